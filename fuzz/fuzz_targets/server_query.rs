#![no_main]
//! Fuzz the server's query-parameter parser and submission parser: any bytes are filters (or
//! a 400 naming the parameter), any body indicators (or a 422 naming the items), never a
//! panic; and a parsed filter applies to an indicator without panicking.
use libfuzzer_sys::fuzz_target;
use server::query::{Filters, Scale};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let ind = matcher::Indicator::new("evil.example", matcher::IndicatorType::Fqdn, "f");
    for scale in [Scale::Cif, Scale::Native] {
        if let Ok(f) = Filters::parse(text, scale, 1_800_000_000) {
            let _ = f.keeps(&ind);
        }
    }
    let token = server::token::Token {
        id: 1,
        grant: server::token::Grant {
            user: "fuzz".into(),
            groups: vec!["everyone".into()],
            read: true,
            write: true,
            admin: false,
            max_tlp: matcher::Tlp::Amber,
            itypes: Vec::new(),
            expires: None,
        },
        created: 0,
        revoked: false,
        hash_prefix: String::new(),
    };
    let _ = server::cif::parse_submission(data, &token, Scale::Cif, 1_800_000_000);
});
