//! The two TCP stream formats of "An IP Telephone in 74 Lines of Perl".
//!
//! - [`pcm`]: raw unsigned 8-bit PCM, 8 kHz, mono, both directions at once.
//! - [`mp3`]: each direction an MPEG-2 layer III stream, 16 kHz mono, as
//!   `lame -r -s 16 -m m -b 32` writes it and `mpg123 -s -` reads it.
//!
//! Neither format has any signalling: the connection is the call.

pub mod mp3;
pub mod pcm;
