//! The RFC 4475 torture messages (`../shared/testdata/rfc4475/`, see its
//! MANIFEST.tsv): every valid message parses with its fields readable, every
//! invalid one is rejected with the status the RFC asks for (or dropped
//! where no response is possible), every application-layer one parses and
//! gets the answer the RFC describes from `validate` + `uas_precheck`, and no
//! truncation or byte flip of any of them makes the parser panic.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::headers::{Contacts, HeaderName, Headers};
use super::message::{Message, Method, Problem, Request, Response};
use super::uri::{Host, Uri};
use super::validate::{Dropped, Inbound, UasPolicy, uas_precheck, validate_datagram};

struct Entry {
    section: String,
    expected: String,
    data: Vec<u8>,
}

fn corpus_dir() -> PathBuf {
    match std::env::var_os("CLINICDESK_RFC4475_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/rfc4475")),
    }
}

/// Reads the corpus, checking every file against the manifest's size and
/// SHA-256; panics (fails the test) if anything is missing or altered.
fn corpus() -> BTreeMap<String, Entry> {
    let dir = corpus_dir();
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap_or_else(|e| {
        panic!(
            "RFC 4475 corpus missing: cannot read {}: {e} (set CLINICDESK_RFC4475_DIR to the directory)",
            dir.join("MANIFEST.tsv").display()
        )
    });
    let mut out = BTreeMap::new();
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [file, section, expected, bytes, sha] = cols.as_slice() else { panic!("bad manifest line {line:?}") };
        let data = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("corpus file {file}: {e}"));
        assert_eq!(data.len().to_string(), *bytes, "{file}: size differs from MANIFEST.tsv");
        let digest: String = Sha256::digest(&data).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(digest, *sha, "{file}: SHA-256 differs from MANIFEST.tsv");
        out.insert(
            (*file).to_owned(),
            Entry { section: (*section).to_owned(), expected: (*expected).to_owned(), data },
        );
    }
    out
}

fn source() -> SocketAddr {
    "192.0.2.200:5060".parse().unwrap()
}

fn parse_request(data: &[u8]) -> Request {
    match Message::parse(data) {
        Ok(Message::Request(r)) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

fn parse_response(data: &[u8]) -> Response {
    match Message::parse(data) {
        Ok(Message::Response(r)) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Every field a user agent reads must be readable on a valid message.
fn assert_readable(file: &str, h: &Headers) {
    let vias = h.vias().unwrap_or_else(|e| panic!("{file}: Via: {e}"));
    assert!(!vias.is_empty(), "{file}: no Via");
    h.from().unwrap_or_else(|e| panic!("{file}: From: {e}"));
    h.to().unwrap_or_else(|e| panic!("{file}: To: {e}"));
    h.call_id().unwrap_or_else(|e| panic!("{file}: Call-ID: {e}"));
    h.cseq().unwrap_or_else(|e| panic!("{file}: CSeq: {e}"));
    h.contacts().unwrap_or_else(|e| panic!("{file}: Contact: {e}"));
    h.max_forwards().unwrap_or_else(|e| panic!("{file}: Max-Forwards: {e}"));
    h.content_length().unwrap_or_else(|e| panic!("{file}: Content-Length: {e}"));
    h.content_type().unwrap_or_else(|e| panic!("{file}: Content-Type: {e}"));
    h.routes().unwrap_or_else(|e| panic!("{file}: Route: {e}"));
    h.record_routes().unwrap_or_else(|e| panic!("{file}: Record-Route: {e}"));
}

#[test]
fn corpus_is_complete() {
    let c = corpus();
    let count = |kind: &str| c.values().filter(|e| e.expected == kind).count();
    assert_eq!((count("valid-parse"), count("invalid-reject"), count("app-layer")), (13, 19, 17));
}

#[test]
fn valid_messages_parse_with_their_fields_readable() {
    let c = corpus();
    for (file, e) in c.iter().filter(|(_, e)| e.expected == "valid-parse") {
        let msg = Message::parse(&e.data).unwrap_or_else(|err| panic!("{file} (§{}): {err}", e.section));
        assert_readable(file, msg.headers());
        // What we accept we can send again and read back the same.
        let again = Message::parse(&msg.to_bytes()).unwrap_or_else(|err| panic!("{file} re-serialised: {err}"));
        assert_eq!(again.body(), msg.body(), "{file}");
    }

    // §3.1.1.1 A short tortuous INVITE.
    let r = parse_request(&c["wsinv.dat"].data);
    assert_eq!(r.method, Method::Invite);
    let Uri::Sip(ruri) = &r.uri else { panic!("sip") };
    assert_eq!((ruri.user.as_deref(), ruri.param("unknownparam")), (Some("vivekg"), Some(None)));
    let to = r.headers.to().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    assert_eq!(to.uri.to_string(), "sip:vivekg@chair-dnrc.example.com");
    let from = r.headers.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(r.headers.max_forwards().unwrap(), Some(68));
    assert_eq!(r.headers.call_id().unwrap(), "wsinv.ndaksdj@192.0.2.1");
    assert_eq!(r.headers.cseq().unwrap().seq, 9);
    assert_eq!(r.headers.content_length().unwrap(), Some(150));
    let vias = r.headers.vias().unwrap();
    let summary: Vec<(String, String, Option<&str>)> =
        vias.iter().map(|v| (v.transport.clone(), v.host.to_string(), v.branch())).collect();
    assert_eq!(
        summary,
        vec![
            ("UDP".into(), "192.0.2.2".into(), Some("390skdjuw")),
            ("TCP".into(), "spindle.example.com".into(), Some("z9hG4bK9ikj8")),
            ("UDP".into(), "192.168.255.111".into(), Some("z9hG4bK30239")),
        ]
    );
    assert_eq!(r.headers.get(&HeaderName::Subject), Some(""));
    assert_eq!(
        r.headers.get(&HeaderName::parse("newfangledheader")),
        Some("newfangled value continued newfangled value")
    );
    assert_eq!(r.headers.get(&HeaderName::parse("UnknownHeaderWithUnusualValue")), Some(";;,,;;,;"));
    let route = r.headers.routes().unwrap();
    assert_eq!(route[0].uri.to_string(), "sip:services.example.com;lr;unknownwith=value;unknown-no-value");
    let Contacts::Addresses(contacts) = r.headers.contacts().unwrap() else { panic!("contacts") };
    assert_eq!(contacts[0].display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(contacts[0].params.get("newparam"), Some(Some("newvalue")));
    assert_eq!(contacts[0].params.get("secondparam"), Some(None));
    assert_eq!(contacts[0].q(), Some(0.33));
    assert_eq!(r.body.len(), 150);
    assert!(r.body.starts_with(b"v=0\r\n"));

    // §3.1.1.2 Wide range of valid characters.
    let r = parse_request(&c["intmeth.dat"].data);
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(r.method, Method::Extension(method.into()));
    assert_eq!(r.headers.cseq().unwrap().method, Method::Extension(method.into()));
    assert_eq!(r.headers.cseq().unwrap().seq, 139122385);
    let Uri::Sip(ruri) = &r.uri else { panic!("sip") };
    assert_eq!(ruri.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
    assert_eq!(ruri.password.as_deref(), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
    assert_eq!(r.headers.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
    assert_eq!(r.headers.to().unwrap().display.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
    let from = r.headers.from().unwrap();
    assert_eq!(from.display.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
    assert_eq!(from.params.value("fromParam''~+*_!.-%").as_deref(), Some("работающий"));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(r.headers.call_id().unwrap(), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert_eq!(r.headers.max_forwards().unwrap(), Some(255));
    assert_eq!(r.headers.get(&HeaderName::parse("extensionHeader-!.%*+_`'~")), Some("\u{feff}大停電"));

    // §3.1.1.3 Valid use of the % escaping mechanism.
    let r = parse_request(&c["esc01.dat"].data);
    let Uri::Sip(ruri) = &r.uri else { panic!("sip") };
    assert_eq!(ruri.user_decoded().as_deref(), Some("sips:user@example.com"));
    assert_eq!(ruri.host, Host::Domain("example.net".into()));
    let Uri::Sip(to) = r.headers.to().unwrap().uri else { panic!("sip") };
    assert_eq!(to.user_decoded().as_deref(), Some("user"));
    let Uri::Sip(from) = r.headers.from().unwrap().uri else { panic!("sip") };
    assert_eq!(from.user_decoded().as_deref(), Some("I have spaces"));
    assert_eq!(r.headers.call_id().unwrap(), "esc01.239409asdfakjkn23onasd0-3234");
    assert!(r.headers.content_type().unwrap().unwrap().is("application", "sdp"));
    let Contacts::Addresses(contacts) = r.headers.contacts().unwrap() else { panic!("contacts") };
    let Uri::Sip(contact) = &contacts[0].uri else { panic!("sip") };
    assert_eq!(contact.user_decoded().as_deref(), Some("caller"));
    assert!(contact.is_loose_route());
    assert_eq!(contact.param("name").unwrap().as_deref(), Some("value%41"));

    // §3.1.1.4 Escaped nulls in URIs.
    let r = parse_request(&c["escnull.dat"].data);
    let Uri::Sip(to) = r.headers.to().unwrap().uri else { panic!("sip") };
    assert_eq!(to.user_bytes().as_deref(), Some(&b"null-\0-null"[..]));
    let Contacts::Addresses(contacts) = r.headers.contacts().unwrap() else { panic!("contacts") };
    let users: Vec<Vec<u8>> =
        contacts.iter().map(|c| c.uri.as_sip().unwrap().user_bytes().unwrap().into_owned()).collect();
    assert_eq!(users, vec![b"\0".to_vec(), b"\0\0".to_vec()]);
    assert_eq!(r.headers.content_length().unwrap(), Some(0));

    // §3.1.1.5 Use of % when it is not an escape.
    let r = parse_request(&c["esc02.dat"].data);
    assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
    assert_eq!(r.headers.to().unwrap().display.as_deref(), Some("%Z%45"));
    assert_eq!(r.headers.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
    let Contacts::Addresses(contacts) = r.headers.contacts().unwrap() else { panic!("contacts") };
    assert_eq!(contacts.len(), 2, "C%6Fntact is not Contact");
    assert_eq!(r.headers.get(&HeaderName::parse("C%6Fntact")), Some("<sip:alias2@host2.example.com>"));

    // §3.1.1.6 Message with no LWS between display name and <.
    let r = parse_request(&c["lwsdisp.dat"].data);
    assert_eq!(r.headers.from().unwrap().display.as_deref(), Some("caller"));
    assert_eq!(r.headers.from().unwrap().tag(), Some("323"));

    // §3.1.1.7 Long values in header fields.
    let r = parse_request(&c["longreq.dat"].data);
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0].host, Host::Domain("sip33.example.com".into()));
    assert_eq!(vias[33].received(), Some("192.0.2.5".parse().unwrap()));
    assert!(vias[33].branch().unwrap().len() > 200);
    let to = r.headers.to().unwrap();
    assert!(to.display.as_deref().unwrap().starts_with("I have a user name of extremeextreme"));
    assert_eq!(to.uri.as_sip().unwrap().port, Some(6000));
    assert_eq!(to.uri.as_sip().unwrap().params.0.len(), 3);
    assert!(r.headers.from().unwrap().tag().unwrap().len() > 150);
    assert_eq!(r.body.len(), 150);

    // §3.1.1.8 Extra trailing octets in a UDP datagram: only the REGISTER counts.
    let r = parse_request(&c["dblreq.dat"].data);
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());
    assert_eq!(r.headers.call_id().unwrap(), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");

    // §3.1.1.9 Semicolon-separated parameters in URI user part.
    let r = parse_request(&c["semiuri.dat"].data);
    let Uri::Sip(ruri) = &r.uri else { panic!("sip") };
    assert_eq!(ruri.user.as_deref(), Some("user;par=u%40example.net"));
    assert!(ruri.params.is_empty());
    assert_eq!(r.headers.list(&HeaderName::Accept).count(), 6);

    // §3.1.1.10 Varied and unknown transport types.
    let r = parse_request(&c["transports.dat"].data);
    let t: Vec<String> = r.headers.vias().unwrap().into_iter().map(|v| v.transport).collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    // §3.1.1.11 Multipart MIME message (binary body).
    let r = parse_request(&c["mpart01.dat"].data);
    assert_eq!(r.method, Method::Message);
    assert_eq!(r.body.len(), 553);
    let ct = r.headers.content_type().unwrap().unwrap();
    assert!(ct.is("multipart", "mixed"));
    assert_eq!(ct.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
    assert!(r.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
    assert_eq!(r.headers.top_via().unwrap().rport(), Some(None));

    // §3.1.1.12 Unusual reason phrase.
    let resp = parse_response(&c["unreason.dat"].data);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.reason, "= 2**3 * 5**2 но сто девяносто девять - простое");
    assert_eq!(resp.body.len(), 154);

    // §3.1.1.13 Empty reason phrase.
    let resp = parse_response(&c["noreason.dat"].data);
    assert_eq!((resp.status, resp.reason.as_str()), (100, ""));
}

#[test]
fn invalid_messages_are_rejected_with_the_rfc_status() {
    let c = corpus();
    // file → (status, or None for "drop, no response possible"; words the reason must contain)
    let expect: &[(&str, Option<u16>, &str)] = &[
        ("badinv01.dat", Some(400), "Via"),
        ("clerr.dat", Some(400), "Content-Length 9999"),
        ("ncl.dat", Some(400), "Content-Length"),
        ("scalar02.dat", Some(400), "CSeq"),
        ("scalarlg.dat", None, ""),
        ("quotbal.dat", Some(400), "unterminated quoted string"),
        ("ltgtruri.dat", Some(400), "Request-URI: enclosed in <>"),
        ("lwsruri.dat", Some(400), "white space inside the Request-URI"),
        ("lwsstart.dat", Some(400), "more than one SP"),
        ("trws.dat", Some(400), "white space after the SIP-Version"),
        ("escruri.dat", Some(400), "escaped headers"),
        ("baddate.dat", Some(400), "GMT"),
        ("regbadct.dat", Some(400), "enclosed in <>"),
        ("badaspec.dat", Some(400), "white space inside <URI>"),
        ("baddn.dat", Some(400), "must be quoted"),
        ("badvers.dat", Some(505), "Version Not Supported"),
        ("mismatch01.dat", Some(400), "CSeq method INVITE does not match the request method OPTIONS"),
        ("mismatch02.dat", Some(400), "CSeq method INVITE does not match the request method NEWMETHOD"),
        ("bigcode.dat", None, ""),
    ];
    let listed: Vec<&str> = c.iter().filter(|(_, e)| e.expected == "invalid-reject").map(|(f, _)| f.as_str()).collect();
    let mut expected_files: Vec<&str> = expect.iter().map(|(f, _, _)| *f).collect();
    expected_files.sort_unstable();
    assert_eq!(listed, expected_files, "every invalid-reject file has an expectation");

    for (file, status, words) in expect {
        let e = &c[*file];
        let err = Message::parse(&e.data).expect_err(file);
        assert_eq!(err.status(), *status, "{file} (§{}): {err}", e.section);
        match validate_datagram(&e.data, source()) {
            Inbound::Reply(resp) => {
                assert_eq!(Some(resp.status), *status, "{file}");
                assert!(resp.reason.contains(words), "{file}: reason {:?} should name {words:?}", resp.reason);
                // The answer copies what the client matches it by.
                let text = String::from_utf8(resp.to_bytes()).unwrap();
                let call_id = e.data.split(|b| *b == b'\n').find(|l| l.starts_with(b"Call-ID")).unwrap();
                let call_id = std::str::from_utf8(call_id).unwrap().trim_end();
                assert!(text.contains(call_id), "{file}: {text}");
                assert!(text.contains("\r\nVia: "), "{file}: {text}");
                assert!(text.contains("\r\nCSeq: "), "{file}: {text}");
            }
            Inbound::Drop(Dropped::Unanswerable(_)) => assert_eq!(*status, None, "{file} dropped"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

#[test]
fn application_layer_messages_parse_and_get_the_rfc_answer() {
    let c = corpus();
    let policy = UasPolicy::default();
    // What `clinicdesk phone` (a UA that is not a registrar) answers:
    // Some(status) = this response; None = processed normally / no response.
    let expect: &[(&str, Option<u16>)] = &[
        ("badbranch.dat", None), // §3.2.1: falls back to RFC 2543 matching (see transaction tests)
        ("insuf.dat", Some(400)),
        ("unkscm.dat", Some(416)),
        ("novelsc.dat", Some(416)),
        ("unksm2.dat", Some(405)), // REGISTER: a UA is no registrar
        ("bext01.dat", Some(420)),
        ("invut.dat", Some(415)),
        ("regaut01.dat", Some(405)),
        ("multi01.dat", Some(400)),
        ("mcl01.dat", Some(400)),
        ("bcast.dat", None),  // a response: processed as usual, nothing sent
        ("zeromf.dat", None), // Max-Forwards 0 matters to proxies, not to the UAS
        ("cparam01.dat", Some(405)),
        ("cparam02.dat", Some(405)),
        ("regescrt.dat", Some(405)),
        ("sdp01.dat", Some(406)),
        ("inv2543.dat", None),
    ];
    let listed: Vec<&str> = c.iter().filter(|(_, e)| e.expected == "app-layer").map(|(f, _)| f.as_str()).collect();
    let mut expected_files: Vec<&str> = expect.iter().map(|(f, _)| *f).collect();
    expected_files.sort_unstable();
    assert_eq!(listed, expected_files, "every app-layer file has an expectation");

    for (file, status) in expect {
        let e = &c[*file];
        Message::parse(&e.data).unwrap_or_else(|err| panic!("{file} (§{}) must parse: {err}", e.section));
        let answer = match validate_datagram(&e.data, source()) {
            Inbound::Request(req) => uas_precheck(&req, &policy),
            Inbound::Response(_) => None,
            Inbound::Reply(resp) => Some(resp),
            Inbound::Drop(d) => panic!("{file}: dropped: {d}"),
        };
        assert_eq!(answer.as_ref().map(|r| r.status), *status, "{file} (§{}): {answer:?}", e.section);
        if let Some(resp) = answer {
            let again = parse_response(&resp.to_bytes());
            assert_eq!(again.status, resp.status);
            assert!(again.headers.top_via().is_ok(), "{file}: the answer carries the Via");
        }
    }

    // Details the RFC text points at.
    let Inbound::Reply(r) = validate_datagram(&c["insuf.dat"].data, source()) else { panic!("insuf") };
    assert_eq!(r.reason, "Bad Request - missing From, To, Call-ID");
    let Inbound::Reply(r) = validate_datagram(&c["multi01.dat"].data, source()) else { panic!("multi01") };
    assert!(r.reason.contains("more than one") && r.reason.contains("CSeq"), "{}", r.reason);
    let Inbound::Reply(r) = validate_datagram(&c["mcl01.dat"].data, source()) else { panic!("mcl01") };
    assert!(r.reason.contains("Content-Length"), "{}", r.reason);

    let bext = parse_request(&c["bext01.dat"].data);
    let resp = uas_precheck(&bext, &policy).unwrap();
    assert_eq!(resp.headers.get(&HeaderName::Unsupported), Some("nothingSupportsThis, nothingSupportsThisEither"));
    let invut = parse_request(&c["invut.dat"].data);
    assert_eq!(uas_precheck(&invut, &policy).unwrap().headers.get(&HeaderName::Accept), Some("application/sdp"));
    let sdp01 = parse_request(&c["sdp01.dat"].data);
    assert!(uas_precheck(&sdp01, &policy).unwrap().headers.get(&HeaderName::Warning).unwrap().starts_with("399 "));

    let r = parse_request(&c["unksm2.dat"].data);
    assert_eq!(r.headers.to().unwrap().uri.scheme(), "isbn");
    assert_eq!(r.headers.from().unwrap().uri.to_string(), "http://www.example.com");
    let Contacts::Addresses(contacts) = r.headers.contacts().unwrap() else { panic!("contacts") };
    assert_eq!(contacts[0].uri.to_string(), "name:John_Smith");

    let Uri::Other(o) = parse_request(&c["novelsc.dat"].data).uri else { panic!("other scheme") };
    assert_eq!((o.scheme.as_str(), o.rest.as_str()), ("soap.beep", "//192.0.2.103:3002"));

    // §3.3.12/13: a parameter outside <> belongs to the header, inside to the URI.
    let Contacts::Addresses(c1) = parse_request(&c["cparam01.dat"].data).headers.contacts().unwrap() else {
        panic!("contacts")
    };
    assert_eq!(c1[0].params.get("unknownparam"), Some(None));
    assert!(c1[0].uri.as_sip().unwrap().params.is_empty());
    let Contacts::Addresses(c2) = parse_request(&c["cparam02.dat"].data).headers.contacts().unwrap() else {
        panic!("contacts")
    };
    assert!(c2[0].params.is_empty());
    assert_eq!(c2[0].uri.as_sip().unwrap().param("unknownparam"), Some(None));

    // §3.3.14: escaped headers in a Contact inside <> are legal.
    let Contacts::Addresses(c3) = parse_request(&c["regescrt.dat"].data).headers.contacts().unwrap() else {
        panic!("contacts")
    };
    assert_eq!(c3[0].uri.as_sip().unwrap().header("Route").as_deref(), Some("<sip:sip.example.com>"));

    let bcast = parse_response(&c["bcast.dat"].data);
    assert_eq!(bcast.headers.vias().unwrap()[1].host, Host::Ipv4("255.255.255.255".parse().unwrap()));

    // §3.4.1: an RFC 2543 INVITE: no branch, no Max-Forwards, no Content-Length (body to the end).
    let r = parse_request(&c["inv2543.dat"].data);
    assert_eq!(r.headers.top_via().unwrap().branch(), None);
    assert_eq!(r.headers.max_forwards().unwrap(), None);
    assert!(r.body.starts_with(b"v=0") && r.body.ends_with(b"RTP/AVP 0\r\n"));
    assert_eq!(
        r.headers.record_routes().unwrap()[0].uri.as_sip().unwrap().param("maddr").unwrap().as_deref(),
        Some("ss1.example.com")
    );

    let zero = parse_request(&c["zeromf.dat"].data);
    assert_eq!(zero.headers.max_forwards().unwrap(), Some(0));
}

/// Feeds every truncation of every corpus message, and every message with
/// one byte replaced (each position gets one of a rotating set of delimiter,
/// control, non-UTF-8 and case-flipped bytes), through the parser and the
/// datagram path: each must return, never panic; what is accepted must
/// serialise to something accepted again.
#[test]
fn mutated_messages_never_panic() {
    let c = corpus();
    let policy = UasPolicy::default();
    let substitutes: &[u8] = b"\x00\r\n :;,\"<>@%\\=/\xff\x80";
    let mut accepted = 0usize;
    let mut total = 0usize;
    let mut check = |data: &[u8]| {
        total += 1;
        if let Ok(msg) = Message::parse(data) {
            accepted += 1;
            let again = Message::parse(&msg.to_bytes())
                .unwrap_or_else(|e| panic!("accepted {data:?} but not its serialisation: {e}"));
            let strip =
                |h: &Headers| h.iter().filter(|h| h.name != HeaderName::ContentLength).cloned().collect::<Vec<_>>();
            assert_eq!(strip(again.headers()), strip(msg.headers()));
            assert_eq!(again.body(), msg.body());
        }
        match validate_datagram(data, source()) {
            Inbound::Request(req) => {
                let _ = uas_precheck(&req, &policy);
                let _ = (req.headers.vias(), req.headers.contacts(), req.headers.event(), req.headers.replaces());
            }
            Inbound::Reply(resp) => {
                // Our reply copies the request's lines as they came, broken or not; everything
                // we wrote ourselves (status line, framing) must read back.
                if let Err(e) = Message::parse(&resp.to_bytes()) {
                    assert!(matches!(e.problem, Problem::Header(_)), "our own reply is broken: {e}");
                }
            }
            Inbound::Response(_) | Inbound::Drop(_) => {}
        }
    };
    for e in c.values() {
        for cut in 0..=e.data.len() {
            check(&e.data[..cut]);
        }
        let mut m = e.data.clone();
        for i in 0..e.data.len() {
            // One substitution per position keeps the run short on a debug build;
            // rotating through the set still puts every byte of it at every kind of place.
            let k = i % (substitutes.len() + 1);
            m[i] = substitutes.get(k).copied().unwrap_or(e.data[i] ^ 0x20);
            check(&m);
            m[i] = e.data[i];
        }
    }
    assert!(total > 40_000 && accepted > 1000, "{accepted} of {total} accepted");
}
