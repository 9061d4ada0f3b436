//! Read-only file mappings that survive the file shrinking under them.
//!
//! A log file truncated while it is mapped (logrotate's `copytruncate`) makes every access to
//! a page past its new end raise SIGBUS, which kills the process. Reading instead of mapping
//! avoids that but copies every byte out of the page cache (+28% wall on a 1 GB scan). A
//! [`ShrinkGuardedMap`] keeps the mapping: a process-wide SIGBUS handler, installed once,
//! answers a fault on a page of a registered map by mapping a zero page in its place and
//! marking the map ([`ShrinkGuardedMap::faulted`]); the access then reads zeros and the caller
//! reports the shrink. A SIGBUS anywhere else goes to the disposition there was before
//! (Rust's own handler, or the default), as if this module did not exist.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Maps registered at once; past this [`ShrinkGuardedMap::map`] answers `None` (read instead).
const SLOTS: usize = 64;

/// One registered map: its address range and whether a page of it faulted.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static REGISTRY: [Slot; SLOTS] = [FREE; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// The SIGBUS disposition before ours (handed back a fault that is not ours).
struct Previous(libc::sigaction);
// SAFETY: plain data written once before the handler can run, then only read.
unsafe impl Sync for Previous {}
unsafe impl Send for Previous {}
static PREVIOUS: OnceLock<Previous> = OnceLock::new();

/// The handler: a fault inside a registered map gets a zero page; any other goes back to the
/// previous disposition (returning re-runs the faulting access under it). Only atomics,
/// `mmap` and `sigaction` (system calls) are used here.
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for slot in &REGISTRY {
        let start = slot.start.load(Ordering::Acquire);
        if start == 0 || addr < start || addr >= slot.end.load(Ordering::Acquire) {
            continue;
        }
        let at = addr & !(page - 1);
        // SAFETY: `at` is a page inside a live read-only file mapping this module registered;
        // replacing that page with an anonymous zero page changes what the reader sees (zeros
        // instead of a fault), nothing else owns it.
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                page,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            slot.faulted.store(true, Ordering::Release);
            return;
        }
        break;
    }
    // SAFETY: restoring a disposition read from the kernel (or the default).
    unsafe {
        match PREVIOUS.get() {
            Some(prev) => {
                libc::sigaction(libc::SIGBUS, &prev.0, std::ptr::null_mut());
            }
            None => {
                libc::signal(libc::SIGBUS, libc::SIG_DFL);
            }
        }
    }
}

/// Install the handler once; the error of a failed installation every time.
fn install() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let result = INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: a zeroed sigaction is a valid starting value; the handler has the
        // SA_SIGINFO signature; `old` receives the previous disposition.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            action.sa_sigaction = handler as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut old) != 0 {
                return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            let _ = PREVIOUS.set(Previous(old));
        }
        Ok(())
    });
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(io::Error::from_raw_os_error(*e)),
    }
}

/// A read-only mapping of a file's first `len` bytes that reads zeros, instead of killing the
/// process, where the file shrank under it; [`ShrinkGuardedMap::faulted`] says it happened.
pub struct ShrinkGuardedMap {
    map: memmap2::Mmap,
    slot: usize,
}

impl ShrinkGuardedMap {
    /// Map `len` bytes of `file` (`len` > 0). `Ok(None)` when every slot is in use: read the
    /// file instead.
    pub fn map(file: &File, len: u64) -> io::Result<Option<Self>> {
        install()?;
        let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to map"))?;
        // SAFETY: read-only; a file that shrinks under the map reads zeros through the
        // handler above instead of faulting, and `faulted` reports it.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
        let start = map.as_ptr() as usize;
        for (i, slot) in REGISTRY.iter().enumerate() {
            // Reserve with an address no fault can have, then publish the range.
            if slot
                .start
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                slot.faulted.store(false, Ordering::Release);
                slot.end.store(start + map.len(), Ordering::Release);
                slot.start.store(start, Ordering::Release);
                return Ok(Some(ShrinkGuardedMap { map, slot: i }));
            }
        }
        Ok(None)
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Whether a page past the file's end was touched (and read as zeros) so far.
    pub fn faulted(&self) -> bool {
        REGISTRY[self.slot].faulted.load(Ordering::Acquire)
    }
}

impl Drop for ShrinkGuardedMap {
    fn drop(&mut self) {
        let slot = &REGISTRY[self.slot];
        slot.end.store(0, Ordering::Release);
        slot.start.store(0, Ordering::Release);
        // The mapping (with any zero pages put into it) is unmapped when `map` drops.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_cut_under_the_map_reads_zeros_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let page = PAGE.load(Ordering::Relaxed).max(4096);
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![b'x'; page * 4]).unwrap();
        drop(f);
        let file = File::open(&path).unwrap();
        let map = ShrinkGuardedMap::map(&file, (page * 4) as u64)
            .unwrap()
            .unwrap();
        assert_eq!(map.bytes()[page * 3], b'x');
        assert!(!map.faulted());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(page as u64)
            .unwrap();
        // Without the guard this read dies of SIGBUS.
        let tail: u64 = map.bytes()[page * 2..].iter().map(|&b| u64::from(b)).sum();
        assert_eq!(tail, 0);
        assert!(map.faulted());
        assert_eq!(
            map.bytes()[0],
            b'x',
            "what is still in the file reads as it is"
        );
        drop(map);
        // A fresh map of the same file starts clean.
        let again = ShrinkGuardedMap::map(&file, page as u64).unwrap().unwrap();
        assert!(!again.faulted());
    }
}
