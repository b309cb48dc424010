//! The system's libopus encoder, loaded at run time when it is installed
//! (Debian's `libopus0`), for [`super::opus::OpusEncoder`].
//!
//! It is the same codec as the built-in `ropus`, which ports it: the two
//! make packets that decode the same way, at about the same quality
//! (PESQ-WB 4.45 and 4.47 for the test speech at 24 kbit/s, complexity 5).
//! But the C library is faster: in a call's rhythm (one 20 ms frame of
//! 16 kHz speech every 20 ms, caches cold) its encoder takes about 215 µs a
//! frame here against 290 for ropus, and the encoder is half of a call's
//! CPU. The decoder costs a tenth of that and stays ropus.
//!
//! Nothing is linked: the library is opened with `dlopen(3)`, so building
//! ipphone needs neither libopus nor its headers, and a machine without it
//! runs the built-in encoder. `IPPHONE_OPUS=ropus` asks for the built-in
//! one anyway, `IPPHONE_OPUS=libopus` for libopus or an error
//! ([`super::opus::EncoderKind::preferred`]).
//!
//! The few entry points used are declared here, as `opus.h` and
//! `opus_defines.h` of libopus 1.1 and later have them.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::OnceLock;

/// The shared library's name, as its package installs it.
const LIBRARY: &CStr = c"libopus.so.0";

const OPUS_OK: c_int = 0;
const OPUS_APPLICATION_VOIP: c_int = 2048;
const OPUS_SET_BITRATE_REQUEST: c_int = 4002;
const OPUS_SET_COMPLEXITY_REQUEST: c_int = 4010;
#[cfg(test)]
const OPUS_GET_COMPLEXITY_REQUEST: c_int = 4011;
const OPUS_SET_INBAND_FEC_REQUEST: c_int = 4012;
const OPUS_SET_PACKET_LOSS_PERC_REQUEST: c_int = 4014;
#[cfg(test)]
const OPUS_GET_PACKET_LOSS_PERC_REQUEST: c_int = 4015;
const OPUS_SET_DTX_REQUEST: c_int = 4016;
const OPUS_GET_LOOKAHEAD_REQUEST: c_int = 4027;

type Create = unsafe extern "C" fn(i32, c_int, c_int, *mut c_int) -> *mut c_void;
type Destroy = unsafe extern "C" fn(*mut c_void);
type Encode = unsafe extern "C" fn(*mut c_void, *const i16, c_int, *mut u8, i32) -> i32;
type Ctl = unsafe extern "C" fn(*mut c_void, c_int, ...) -> c_int;
type StrError = unsafe extern "C" fn(c_int) -> *const c_char;
type Version = unsafe extern "C" fn() -> *const c_char;

/// The library's entry points, resolved once for the process.
struct Library {
    create: Create,
    destroy: Destroy,
    encode: Encode,
    ctl: Ctl,
    strerror: StrError,
    version: String,
}

/// libopus's version string (`libopus 1.3.1`), or why it is not there.
pub fn version() -> Result<&'static str, String> {
    library().map(|lib| lib.version.as_str())
}

fn library() -> Result<&'static Library, String> {
    static LIBRARY_ONCE: OnceLock<Result<Library, String>> = OnceLock::new();
    LIBRARY_ONCE
        .get_or_init(|| load(LIBRARY))
        .as_ref()
        .map_err(Clone::clone)
}

fn load(library: &CStr) -> Result<Library, String> {
    // SAFETY: `library` is a NUL-terminated name. The handle is never
    // closed, so the symbols taken from it stay valid for the process.
    let handle = unsafe { libc::dlopen(library.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(format!(
            "{} is not installed (Debian package libopus0)",
            library.to_string_lossy()
        ));
    }
    let symbol = |name: &CStr| {
        // SAFETY: `handle` is a live handle and `name` NUL-terminated.
        let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if address.is_null() {
            Err(format!("libopus has no {}", name.to_string_lossy()))
        } else {
            Ok(address)
        }
    };
    // SAFETY (each transmute): the address is the named libopus function,
    // whose C signature (opus.h) the type repeats; a data pointer and a
    // function pointer have the same size and representation on the
    // platforms dlsym serves.
    let lib = unsafe {
        Library {
            create: std::mem::transmute::<*mut c_void, Create>(symbol(c"opus_encoder_create")?),
            destroy: std::mem::transmute::<*mut c_void, Destroy>(symbol(c"opus_encoder_destroy")?),
            encode: std::mem::transmute::<*mut c_void, Encode>(symbol(c"opus_encode")?),
            ctl: std::mem::transmute::<*mut c_void, Ctl>(symbol(c"opus_encoder_ctl")?),
            strerror: std::mem::transmute::<*mut c_void, StrError>(symbol(c"opus_strerror")?),
            version: {
                let version = std::mem::transmute::<*mut c_void, Version>(symbol(
                    c"opus_get_version_string",
                )?);
                CStr::from_ptr(version()).to_string_lossy().into_owned()
            },
        }
    };
    Ok(lib)
}

/// A libopus encoder for mono VoIP speech.
pub struct Encoder {
    lib: &'static Library,
    state: *mut c_void,
}

// SAFETY: the encoder's state is plain memory that libopus touches only in
// calls made through `&mut self`; nothing ties it to the thread that made it.
unsafe impl Send for Encoder {}

impl Encoder {
    /// An encoder in the VoIP application at `sample_rate` Hz, mono.
    pub fn new(sample_rate: u32) -> Result<Self, String> {
        let lib = library()?;
        let rate = i32::try_from(sample_rate).map_err(|_| "sample rate out of range".to_owned())?;
        let mut error = OPUS_OK;
        // SAFETY: `error` outlives the call; libopus checks the other arguments.
        let state = unsafe { (lib.create)(rate, 1, OPUS_APPLICATION_VOIP, &mut error) };
        if state.is_null() || error != OPUS_OK {
            return Err(describe(lib, error));
        }
        Ok(Self { lib, state })
    }

    pub fn set_bitrate(&mut self, bits: u32) -> Result<(), String> {
        self.set(OPUS_SET_BITRATE_REQUEST, bits)
    }

    pub fn set_complexity(&mut self, complexity: u8) -> Result<(), String> {
        self.set(OPUS_SET_COMPLEXITY_REQUEST, u32::from(complexity))
    }

    pub fn set_inband_fec(&mut self, on: bool) -> Result<(), String> {
        self.set(OPUS_SET_INBAND_FEC_REQUEST, u32::from(on))
    }

    pub fn set_packet_loss_perc(&mut self, percent: u8) -> Result<(), String> {
        self.set(OPUS_SET_PACKET_LOSS_PERC_REQUEST, u32::from(percent))
    }

    pub fn set_dtx(&mut self, on: bool) -> Result<(), String> {
        self.set(OPUS_SET_DTX_REQUEST, u32::from(on))
    }

    /// Samples at the encoder's rate by which the decoded audio lags.
    pub fn lookahead(&self) -> Result<u32, String> {
        self.get(OPUS_GET_LOOKAHEAD_REQUEST)
    }

    /// The complexity the encoder runs at, as libopus reports it.
    #[cfg(test)]
    pub fn complexity(&self) -> Result<u32, String> {
        self.get(OPUS_GET_COMPLEXITY_REQUEST)
    }

    /// The loss its FEC is sized for, as libopus reports it.
    #[cfg(test)]
    pub fn packet_loss_perc(&self) -> Result<u32, String> {
        self.get(OPUS_GET_PACKET_LOSS_PERC_REQUEST)
    }

    /// Encodes one frame of `pcm` (a length Opus allows at the rate) into
    /// `out`; returns the packet's length.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, String> {
        let frame = c_int::try_from(pcm.len()).map_err(|_| "frame too long".to_owned())?;
        let room = i32::try_from(out.len()).unwrap_or(i32::MAX);
        // SAFETY: libopus reads `frame` samples from `pcm` (its length) and
        // writes at most `room` bytes into `out` (its length).
        let n =
            unsafe { (self.lib.encode)(self.state, pcm.as_ptr(), frame, out.as_mut_ptr(), room) };
        usize::try_from(n).map_err(|_| describe(self.lib, n))
    }

    fn get(&self, request: c_int) -> Result<u32, String> {
        let mut value: i32 = 0;
        // SAFETY: each GET request used here writes one `opus_int32` through
        // the pointer, which points at `value`. libopus does not keep it.
        let status = unsafe { (self.lib.ctl)(self.state, request, &mut value as *mut i32) };
        if status != OPUS_OK {
            return Err(describe(self.lib, status));
        }
        u32::try_from(value).map_err(|_| format!("libopus answered {value}"))
    }

    fn set(&mut self, request: c_int, value: u32) -> Result<(), String> {
        let value = i32::try_from(value).map_err(|_| "value out of range".to_owned())?;
        // SAFETY: each SET request used here takes one `opus_int32` by value.
        let status = unsafe { (self.lib.ctl)(self.state, request, value) };
        if status == OPUS_OK {
            Ok(())
        } else {
            Err(describe(self.lib, status))
        }
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: `state` came from `opus_encoder_create` and is freed once.
        unsafe { (self.lib.destroy)(self.state) };
    }
}

fn describe(lib: &Library, status: c_int) -> String {
    // SAFETY: opus_strerror returns a static NUL-terminated string for any code.
    let text = unsafe { CStr::from_ptr((lib.strerror)(status)) };
    format!("libopus: {}", text.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine without the library gets a message that names it (and
    /// `IPPHONE_OPUS=libopus` is refused with it).
    #[test]
    fn a_missing_library_is_an_error_that_names_it() {
        let error = load(c"libopus-ipphone-test-absent.so.0")
            .err()
            .expect("no such library");
        assert!(
            error.contains("libopus-ipphone-test-absent.so.0"),
            "{error}"
        );
        assert!(error.contains("libopus0"), "{error}");
    }

    /// libopus itself (installed by scripts/test) loads, says its version
    /// and takes the settings a call gives it.
    #[test]
    fn libopus_loads_and_takes_a_call_s_settings() {
        let version = version().expect("scripts/test installs libopus0");
        assert!(version.starts_with("libopus"), "{version}");
        let mut encoder = Encoder::new(16_000).expect("an encoder");
        encoder.set_bitrate(24_000).expect("bitrate");
        encoder.set_complexity(2).expect("complexity");
        encoder.set_packet_loss_perc(10).expect("loss");
        assert_eq!(encoder.complexity(), Ok(2));
        assert_eq!(encoder.packet_loss_perc(), Ok(10));
        assert!(encoder.set_complexity(11).is_err(), "libopus refuses 11");
        // 2.5 ms of lookahead and 4 ms of delay compensation at 16 kHz.
        assert_eq!(encoder.lookahead(), Ok(104));
        let mut packet = [0u8; 1_275];
        assert!(encoder.encode(&[0i16; 320], &mut packet).is_ok());
        assert!(
            encoder.encode(&[0i16; 321], &mut packet).is_err(),
            "not a frame length"
        );
        assert!(Encoder::new(44_100).is_err(), "not an Opus rate");
    }
}
