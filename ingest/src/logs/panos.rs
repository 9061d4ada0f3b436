//! Palo Alto Networks PAN-OS syslog CSV (the documented field order of the TRAFFIC and
//! THREAT logs, PAN-OS 6.0 to 11): `FUTURE_USE, Receive Time, Serial, Type, Subtype,
//! FUTURE_USE, Generated Time, Source, Destination, NAT Source, NAT Destination, Rule,
//! Source User, Destination User, Application, Virtual System, Source Zone, Destination
//! Zone, Inbound If, Outbound If, Log Action, FUTURE_USE, Session ID, Repeat Count, Source
//! Port, Destination Port, NAT Source Port, NAT Destination Port, Flags, Protocol, Action,
//! ...`; a THREAT line continues `URL/Filename, Threat ID, Category, Severity, Direction, ...`
//! and (8.0 on) carries the file digest in column 44 and the user agent in column 47.
//! An optional syslog header (`<PRI>`, a date, a host) comes before the CSV.

use super::address::parse_ip;
use super::keyvalue::{fill, Slot};
use super::timestamps::{parse_iso8601, parse_slash_datetime};
use super::tokens::{csv_text, split_csv, trim_eol, Line};
use super::{LineParser, ParseError};
use crate::Observation;

/// PAN-OS CSV lines (TRAFFIC, THREAT and the other types with the same first 31 columns).
#[derive(Debug, Clone, Copy, Default)]
pub struct PanosParser;

/// Log types that share the TRAFFIC/THREAT column layout up to Action.
const TYPES: &[&[u8]] = &[b"TRAFFIC", b"THREAT", b"DECRYPTION", b"TUNNEL", b"SCTP"];

impl LineParser for PanosParser {
    fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Observation<'a>>, ParseError> {
        let line = trim_eol(line);
        if line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#') {
            return Ok(None);
        }
        // The CSV starts after the last blank before its first comma.
        let comma = memchr::memchr(b',', line).ok_or(ParseError::new("not CSV"))?;
        let start = line[..comma]
            .iter()
            .rposition(|&c| c == b' ')
            .map_or(0, |i| i + 1);
        let (prefix, csv) = (&line[..start], &line[start..]);
        let mut spans = Vec::with_capacity(120);
        split_csv(csv, &mut spans).ok_or(ParseError::new("unclosed quote"))?;
        if spans.len() < 31 {
            return Err(ParseError::new("too few fields"));
        }
        let raw = |i: usize| spans.get(i).map_or(&b""[..], |&(s, e, _)| &csv[s..e]);
        let kind = raw(3);
        if !TYPES.contains(&kind) {
            return Err(ParseError::new("not a TRAFFIC or THREAT record"));
        }
        let l = Line::new(csv);
        let text = |i: usize| {
            spans
                .get(i)
                .map(|&s| csv_text(&l, csv, s))
                .unwrap_or_default()
        };
        // The syslog header's ISO time when there is one (it has the zone), else the
        // Receive Time (local time, read as UTC).
        let header_time = prefix
            .split(|&c| c == b' ')
            .find(|t| !t.is_empty())
            .and_then(parse_iso8601);
        let receive = raw(1);
        let receive_time = receive
            .iter()
            .position(|&c| c == b' ')
            .and_then(|sp| parse_slash_datetime(&receive[..sp], &receive[sp + 1..]));
        if receive_time.is_none() {
            return Err(ParseError::new("bad receive time"));
        }
        let mut o = Observation {
            timestamp_ns: header_time.or(receive_time),
            dataset: if kind == b"THREAT" { "threat" } else { "flow" },
            ..Default::default()
        };
        o.source_ip = Some(parse_ip(raw(7)).ok_or(ParseError::new("source is not an address"))?);
        o.destination_ip =
            Some(parse_ip(raw(8)).ok_or(ParseError::new("destination is not an address"))?);
        fill(&mut o, Slot::SourcePort, text(24))?;
        fill(&mut o, Slot::DestinationPort, text(25))?;
        fill(&mut o, Slot::Transport, text(29))?;
        if kind == b"THREAT" {
            let subtype = raw(4);
            if subtype == b"url" {
                fill(&mut o, Slot::Url, text(31))?;
                o.protocol = Some("http");
            }
            if spans.len() > 46 {
                fill(&mut o, Slot::Hash, text(43))?;
                fill(&mut o, Slot::UserAgent, text(46))?;
            }
        }
        Ok(Some(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threat_url_and_traffic() {
        let l = br#"1,2017/05/25 19:31:13,0006C000005,THREAT,url,0,2017/05/25 19:31:13,192.168.1.7,140.177.26.29,201.1.4.5,140.177.26.29,ms_out,,,ssl,vsys1,mgmt,untrust,vlan.199,vlan.1,Standard-Syslog,2017/05/25 19:31:13,50556,1,56059,443,14810,443,0x40b000,tcp,alert,"settings-win.data.microsoft.com/",(9999),computer-and-internet-info,informational,client-to-server,10030265,0x0,192.168.0.0-192.168.255.255,IE,0,,0,,,0,,,,,,,,0,16,11,0,0,,PAN1,"#;
        let o = PanosParser.parse(l).unwrap().unwrap();
        assert_eq!(o.source_ip, Some("192.168.1.7".parse().unwrap()));
        assert_eq!(o.destination_port, Some(443));
        assert_eq!(
            o.url_domain.as_deref(),
            Some("settings-win.data.microsoft.com")
        );
        assert_eq!(o.transport, Some("tcp"));
        let h = br#"2023-07-06T08:11:40+02:00 paloalto.test.host 1,2023/07/06 08:11:40,016401002737,THREAT,vulnerability,2561,2023/07/06 08:11:40,1.2.3.2,1.2.3.3,1.2.3.2,2.2.2.3,TestruleName0,,,ssh,vsys123,Untrust,DMZ,vlan.123,aaa.1,to-Test,2023/07/06 08:11:40,238810,23,47094,22,47094,22,0x402400,tcp,reset-both,,SSH(40015),any,high,client-to-server"#;
        let o = PanosParser.parse(h).unwrap().unwrap();
        assert_eq!(o.timestamp_ns, Some(1_688_623_900_000_000_000));
        assert_eq!(o.source_port, Some(47094));
        assert!(o.url_full.is_none());
        let short = b"1,2017/05/25 19:31:13,0006C000005,THREAT,url,0";
        assert_eq!(
            PanosParser.parse(short).unwrap_err().reason,
            "too few fields"
        );
    }
}
