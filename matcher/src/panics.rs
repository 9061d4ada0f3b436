//! Caught panics, told in words: the one reading of a panic payload that the compiler's
//! threads, the feed updater and the daemon's supervisor report.

/// The text of a caught panic's payload (`"panic"` when it carries none).
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("panic")
}

#[cfg(test)]
mod tests {
    use super::panic_text;

    #[test]
    fn reads_str_and_string_payloads() {
        let s = std::panic::catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_text(s.as_ref()), "static");
        let n = 7;
        let s = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_text(s.as_ref()), "formatted 7");
        let s = std::panic::catch_unwind(|| std::panic::panic_any(3u8)).unwrap_err();
        assert_eq!(panic_text(s.as_ref()), "panic");
    }
}
