//! Every message of `tests/corpus/` (RFC 4475 torture tests and typical traffic) through the
//! engine: what it answers, or that it stays silent. See `tests/corpus/README.md`.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod harness;

use std::time::Duration;

use harness::{B, World, addr};
use sip_engine::message::{self, Message};

/// What the engine must do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A request answered with this status.
    Answer(u16),
    /// A request answered 400 whose reason names the problem.
    BadRequest,
    /// Dropped without an answer (unusable requests, malformed or stray responses).
    Silent,
    /// A response the parser must accept (stray here, so no answer either).
    ValidResponse,
}

const PEER: &str = "192.0.2.77:5060";

fn expectation(file: &str) -> Expect {
    use Expect::*;
    match file {
        // Valid requests.
        "rfc4475-dblreq.sip" | "typical-register-auth.sip" => Answer(405),
        "rfc4475-lwsdisp.sip"
        | "rfc4475-semiuri.sip"
        | "typical-options.sip"
        | "rfc4475-zeromf.sip"
        | "rfc4475-transports.sip" => Answer(200),
        "rfc4475-escnull.sip" => Answer(405),
        "rfc4475-esc01.sip" | "rfc4475-longreq.sip" => Answer(180),
        // Its To already has a tag: a request in a dialog we do not have.
        "rfc4475-wsinv.sip" => Answer(481),
        // Nothing after the magic cookie: RFC 2543 matching takes over (§17.2.3).
        "rfc4475-badbranch.sip" => Answer(200),
        "rfc4475-esc02.sip" | "rfc4475-intmeth.sip" => Answer(501),
        "rfc4475-mpart01.sip" => Answer(405),
        "typical-sipp-invite.sip"
        | "typical-invite-via-proxy.sip"
        | "typical-udp-invite-no-content-length.sip" => Answer(180),
        "typical-bye.sip" => Answer(481),
        "typical-cancel.sip" => Answer(481),
        "typical-ack.sip" => Silent,
        // Valid responses (stray: no transaction here).
        "rfc4475-noreason.sip"
        | "rfc4475-unreason.sip"
        | "typical-180-ringing.sip"
        | "typical-200-ok-invite.sip"
        | "typical-401-unauthorized.sip"
        | "rfc4475-bcast.sip" => ValidResponse,
        // Invalid: RFC 4475 allows a liberal element to repair these.
        "rfc4475-trws.sip" | "rfc4475-baddn.sip" | "rfc4475-badaspec.sip" => Answer(200),
        "rfc4475-baddate.sip" | "rfc4475-escruri.sip" => Answer(180),
        "rfc4475-regbadct.sip" => Answer(405),
        // Invalid, and the parser refuses them: dropped, as RFC 4475 allows.
        "rfc4475-lwsstart.sip" | "rfc4475-lwsruri.sip" => Silent,
        // Invalid and semantic requests answered 400.
        "rfc4475-badinv01.sip"
        | "rfc4475-clerr.sip"
        | "rfc4475-ncl.sip"
        | "rfc4475-scalar02.sip"
        | "rfc4475-mismatch01.sip"
        | "rfc4475-mismatch02.sip"
        | "rfc4475-insuf.sip"
        | "rfc4475-mcl01.sip"
        | "rfc4475-multi01.sip"
        | "rfc4475-quotbal.sip"
        | "rfc4475-ltgtruri.sip"
        | "malformed-cseq-nonnumeric.sip"
        | "malformed-no-cseq.sip" => BadRequest,
        "rfc4475-bext01.sip" => Answer(420),
        "rfc4475-unkscm.sip" => Answer(416),
        "rfc4475-badvers.sip" => Silent,
        // Unparseable or unusable: dropped.
        "rfc4475-bigcode.sip"
        | "rfc4475-scalarlg.sip"
        | "malformed-header-without-colon.sip"
        | "malformed-http-request.sip"
        | "malformed-invalid-utf8-header.sip"
        | "malformed-lf-line-endings.sip"
        | "malformed-no-empty-line.sip" => Silent,
        other => panic!("no expectation for corpus file {other}"),
    }
}

#[test]
fn corpus_messages_get_the_answers_rfc_4475_asks_for() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sip"))
        .collect();
    files.sort();
    assert!(files.len() >= 50, "corpus went missing");
    let mut wrong = vec![];
    for (i, path) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_str().unwrap();
        let data = std::fs::read(path).unwrap();
        let expect = expectation(name);
        let mut w = World::new(i as u64);
        w.send(addr(PEER), addr(B), data.clone());
        w.run_for(Duration::from_millis(50));
        let answers: Vec<String> =
            w.log.iter().filter(|s| s.from == addr(B)).map(|s| s.first_line()).collect();
        let ok = match expect {
            Expect::Answer(status) => {
                answers.first().is_some_and(|a| a.starts_with(&format!("SIP/2.0 {status} ")))
            }
            Expect::BadRequest => {
                answers.len() == 1
                    && answers[0].starts_with("SIP/2.0 400 ")
                    && answers[0] != "SIP/2.0 400 Bad Request"
            }
            Expect::Silent => answers.is_empty(),
            Expect::ValidResponse => {
                answers.is_empty() && matches!(message::parse(&data), Ok(Message::Response(_)))
            }
        };
        if !ok {
            wrong.push(format!("{name}: expected {expect:?}, answered {answers:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} corpus files handled wrongly:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
}
