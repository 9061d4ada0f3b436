//! Opening inputs: plain files, gzip (multi-member), zstd (multi-frame), stdin.

use super::LogError;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Open `path` for reading (`-` = stdin), decompressing gzip and zstd by their magic bytes
/// (whatever the extension). A truncated compressed stream yields every byte that could be
/// decoded, then an `io::Error` (`UnexpectedEof` or `InvalidData`) from `read`.
pub fn open_input(path: &Path) -> Result<Box<dyn Read + Send>, LogError> {
    let name = path.display().to_string();
    let io_err = |source| LogError::Io {
        path: name.clone(),
        source,
    };
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(io_err)?)
    };
    let mut r = BufReader::with_capacity(256 * 1024, raw);
    // Read up to 4 magic bytes (pipes may deliver less per read), then put them back in front.
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        match r.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        }
    }
    let magic = &magic[..got];
    let stream: Box<dyn Read + Send> = Box::new(io::Cursor::new(magic.to_vec()).chain(r));
    Ok(if magic.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::MultiGzDecoder::new(stream))
    } else if magic.starts_with(&ZSTD_MAGIC) {
        Box::new(ZstdFrames::new(stream))
    } else {
        stream
    })
}

/// A zstd reader over every frame of the stream (pure Rust, `ruzstd`).
struct ZstdFrames {
    src: Option<BufReader<Box<dyn Read + Send>>>,
    dec: Option<
        ruzstd::decoding::StreamingDecoder<
            BufReader<Box<dyn Read + Send>>,
            ruzstd::decoding::FrameDecoder,
        >,
    >,
}

impl ZstdFrames {
    fn new(r: Box<dyn Read + Send>) -> Self {
        ZstdFrames {
            src: Some(BufReader::new(r)),
            dec: None,
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl Read for ZstdFrames {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(dec) = self.dec.as_mut() {
                let n = dec.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                // Frame finished: take the source back and look for another frame.
                if let Some(dec) = self.dec.take() {
                    self.src = Some(dec.into_inner());
                }
            }
            let Some(mut src) = self.src.take() else {
                return Ok(0);
            };
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let dec = ruzstd::decoding::StreamingDecoder::new(src).map_err(invalid)?;
            self.dec = Some(dec);
        }
    }
}
