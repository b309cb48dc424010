//! The telephone directory from the command line: contacts added, called by
//! a part of their name and by speed dial, shown by name when they call,
//! blocked when marked so, and carried through a vCard export and import.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

const LONG: Duration = Duration::from_secs(40);

fn contacts(file: &Path, args: &[&str]) -> (i32, String) {
    let out = ipphone()
        .arg("contacts")
        .args(args)
        .arg("--contacts")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_contact_is_called_by_name_and_by_speed_dial() {
    let dir = scratch("contacts-call");
    let book = dir.join("contacts.toml");
    let (mut callee, port) = Phone::listen(&[
        "--auto-answer",
        "--calls",
        "2",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    let address = format!("sip:bob@127.0.0.1:{port}");
    assert_eq!(
        contacts(
            &book,
            &["add", "Bob Builder", &address, "--speed-dial", "2"]
        )
        .0,
        0
    );
    assert_eq!(
        contacts(&book, &["add", "Alice", "sip:alice@192.0.2.1"]).0,
        0
    );
    let (code, listed) = contacts(&book, &["list"]);
    assert_eq!(code, 0);
    assert!(
        listed.contains("Bob Builder") && listed.contains("Alice"),
        "{listed}"
    );
    for query in ["bob", "2"] {
        let mut caller = Phone::spawn(&[
            "call",
            query,
            "--contacts",
            book.to_str().unwrap(),
            "--duration",
            "1",
            "--mic",
            "null",
            "--speaker",
            "null",
        ]);
        assert_eq!(caller.exit_code(LONG), 0, "{query}");
        assert_eq!(
            caller.last("dialing")["target"],
            address.as_str(),
            "{query}"
        );
    }
    assert_eq!(callee.exit_code(LONG), 0);
}

#[test]
fn a_known_caller_is_shown_by_name_and_a_blocked_one_never_rings() {
    let dir = scratch("contacts-incoming");
    let config = dir.join("config");
    std::fs::create_dir_all(config.join("ipphone")).unwrap();
    let book = config.join("ipphone/contacts.toml");
    assert_eq!(
        contacts(&book, &["add", "Alice Liddell", "sip:alice@127.0.0.1"]).0,
        0
    );
    assert_eq!(
        contacts(
            &book,
            &[
                "add",
                "Mallory",
                "sip:mallory@127.0.0.1",
                "--screen",
                "block"
            ]
        )
        .0,
        0
    );
    let (mut callee, port) = Phone::listen_with_env(
        &["--auto-answer", "--mic", "null", "--speaker", "null"],
        &[("XDG_CONFIG_HOME", &config)],
    );
    let target = format!("sip:bob@127.0.0.1:{port}");
    let mut mallory = Phone::spawn_with_env(
        &["call", &target, "--mic", "null", "--speaker", "null"],
        &[("USER", Path::new("mallory"))],
    );
    assert_eq!(mallory.exit_code(LONG), 6);
    let mut alice = Phone::spawn_with_env(
        &[
            "call",
            &target,
            "--duration",
            "1",
            "--mic",
            "null",
            "--speaker",
            "null",
        ],
        &[("USER", Path::new("alice"))],
    );
    assert_eq!(alice.exit_code(LONG), 0);
    let incoming = callee.wait_for("incoming", LONG);
    assert_eq!(incoming["name"], "Alice Liddell", "{incoming}");
    // The answered call ends at the callee too before Ctrl-C: during a
    // call, Ctrl-C hangs up and goes back to waiting; only idle, it exits.
    callee.wait_for("hangup", LONG);
    callee.signal("INT");
    assert_eq!(callee.exit_code(LONG), 0);
    assert_eq!(callee.last("refused")["reason"], "screened");
}

#[test]
fn vcard_export_and_import_round_trip() {
    let dir = scratch("contacts-vcard");
    let (book, copy, card) = (dir.join("a.toml"), dir.join("b.toml"), dir.join("all.vcf"));
    contacts(
        &book,
        &[
            "add",
            "Zoë Ünïcode",
            "sip:zoe@example.com",
            "--speed-dial",
            "7",
        ],
    );
    contacts(
        &book,
        &[
            "add",
            "Old Modem",
            "192.0.2.5:5000",
            "--protocol",
            "tcp-pcm",
        ],
    );
    let (code, vcf) = contacts(&book, &["export"]);
    assert_eq!(code, 0);
    assert!(vcf.starts_with("BEGIN:VCARD"), "{vcf}");
    std::fs::write(&card, &vcf).unwrap();
    assert_eq!(contacts(&copy, &["import", card.to_str().unwrap()]).0, 0);
    assert_eq!(
        std::fs::read_to_string(&book).unwrap(),
        std::fs::read_to_string(&copy).unwrap()
    );
    // A broken file is reported and left as it was.
    std::fs::write(&book, "[[contact]]\nname = \"x\"\naddresses = [1]\n").unwrap();
    let out = ipphone()
        .args(["contacts", "add", "Y", "sip:y@example.com", "--contacts"])
        .arg(&book)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&book).unwrap(),
        "[[contact]]\nname = \"x\"\naddresses = [1]\n"
    );
}

#[test]
fn an_ambiguous_name_is_asked_about_on_a_terminal() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = scratch("contacts-ambiguous");
    let book = dir.join("contacts.toml");
    let (mut callee, port) = Phone::listen(&[
        "--auto-answer",
        "--calls",
        "1",
        "--mic",
        "null",
        "--speaker",
        "null",
    ]);
    contacts(&book, &["add", "Bob Marley", "sip:marley@192.0.2.1"]);
    contacts(
        &book,
        &[
            "add",
            "Bob Builder",
            &format!("sip:builder@127.0.0.1:{port}"),
        ],
    );
    // Without a terminal: the choices, and a usage error.
    let out = ipphone()
        .args(["call", "bob", "--contacts"])
        .arg(&book)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Bob Builder"));
    // On a terminal: asked, answered with 1 (the list is sorted by name).
    let call = format!(
        "{} call bob --contacts {} --duration 1 --mic null --speaker null",
        env!("CARGO_BIN_EXE_ipphone"),
        book.display()
    );
    let mut terminal = Command::new("script")
        .args(["-q", "-c", &call, "/dev/null"])
        .env(
            "XDG_STATE_HOME",
            std::env::temp_dir().join("ipphone-test-state"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("running script (util-linux)");
    std::thread::sleep(Duration::from_millis(700));
    terminal.stdin.take().unwrap().write_all(b"1\n").unwrap();
    assert_eq!(callee.exit_code(LONG), 0, "Bob Builder was called");
    let _ = terminal.wait();
}
