//! Line splitting with `memchr`: 1-based numbers, `\r\n` and a missing final newline handled.

/// Iterator over `(line_number, line_without_eol)`.
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    rest: &'a [u8],
    n: usize,
    done: bool,
}

impl<'a> Lines<'a> {
    /// Lines of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Lines {
            rest: bytes,
            n: 0,
            done: bytes.is_empty(),
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.n += 1;
        let line = match memchr::memchr(b'\n', self.rest) {
            Some(i) => {
                let (l, r) = self.rest.split_at(i);
                self.rest = r.get(1..).unwrap_or(&[]);
                if self.rest.is_empty() {
                    self.done = true;
                }
                l
            }
            None => {
                self.done = true;
                std::mem::take(&mut self.rest)
            }
        };
        Some((self.n, line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_crlf_and_unterminated() {
        let v: Vec<_> = Lines::new(b"a\r\nb\n\nc").collect();
        assert_eq!(
            v,
            vec![
                (1, &b"a"[..]),
                (2, &b"b"[..]),
                (3, &b""[..]),
                (4, &b"c"[..])
            ]
        );
        assert_eq!(Lines::new(b"x\n").count(), 1);
        assert_eq!(Lines::new(b"").count(), 0);
    }
}
