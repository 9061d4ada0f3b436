//! Least privilege: once its capture handles are open, the sensor becomes an unprivileged
//! user (`trawl sniff --user`, `[sensor] user`), or gives up every capability it was started
//! with (a non-root user given CAP_NET_RAW by systemd's `AmbientCapabilities`), so the packet
//! parsers run with no privilege at all.

use std::ffi::CString;
use thiserror::Error;

/// Why the sensor could not become the requested user.
#[derive(Debug, Error)]
pub enum PrivilegeError {
    /// The name has no entry in the user database.
    #[error("no user {0:?} on this system: create it (e.g. `useradd --system --no-create-home {0}`) or name another one with --user")]
    NoSuchUser(String),
    /// A name with a NUL byte.
    #[error("user name {0:?} holds a NUL byte")]
    BadName(String),
    /// A system call refused (not started as root, or limited by a security module).
    #[error("{call} for user {user:?} failed: {source} (changing user needs root or CAP_SETUID/CAP_SETGID)")]
    Refused {
        /// The call that failed.
        call: &'static str,
        /// The user asked for.
        user: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Root could be regained after the change: the drop did not hold.
    #[error("after changing to user {0:?}, root privileges could be regained: refusing to go on")]
    NotDropped(String),
}

/// The uid and primary gid of `name`.
fn lookup(name: &str) -> Result<(libc::uid_t, libc::gid_t), PrivilegeError> {
    let c = CString::new(name).map_err(|_| PrivilegeError::BadName(name.to_string()))?;
    // SAFETY: `pwd`, `buf` and `res` outlive the call; getpwnam_r writes at most `buf.len()`
    // bytes into `buf` and points `res` at `pwd` or null.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pwd, buf.as_mut_ptr(), buf.len(), &mut res) };
    if rc != 0 || res.is_null() {
        return Err(PrivilegeError::NoSuchUser(name.to_string()));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

/// Become user `name` for good: its supplementary groups, then its group, then its uid (real,
/// effective and saved), and check that root cannot be regained. Already that user: nothing
/// to do. Every thread of the process changes (glibc applies set*id to all threads).
pub fn drop_to_user(name: &str) -> Result<(), PrivilegeError> {
    let (uid, gid) = lookup(name)?;
    // SAFETY: plain system calls on integers and a valid C string.
    unsafe {
        if libc::geteuid() == uid && libc::getuid() == uid {
            return Ok(());
        }
        let c = CString::new(name).map_err(|_| PrivilegeError::BadName(name.to_string()))?;
        let refused = |call| PrivilegeError::Refused {
            call,
            user: name.to_string(),
            source: std::io::Error::last_os_error(),
        };
        if libc::initgroups(c.as_ptr(), gid) != 0 {
            return Err(refused("initgroups"));
        }
        if libc::setresgid(gid, gid, gid) != 0 {
            return Err(refused("setresgid"));
        }
        if libc::setresuid(uid, uid, uid) != 0 {
            return Err(refused("setresuid"));
        }
        if uid != 0 && (libc::setuid(0) == 0 || libc::geteuid() == 0) {
            return Err(PrivilegeError::NotDropped(name.to_string()));
        }
    }
    Ok(())
}

/// Give up every capability (effective, permitted, inheritable and ambient) for good, keeping
/// the uid: what a capture needs is already open.
pub fn drop_capabilities() -> Result<(), PrivilegeError> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let refused = |call| PrivilegeError::Refused {
        call,
        user: "(current)".into(),
        source: std::io::Error::last_os_error(),
    };
    let header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: prctl on integers; capset reads one header and the two data words version 3
    // defines, both alive for the call.
    unsafe {
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        ) != 0
        {
            return Err(refused("prctl(PR_CAP_AMBIENT_CLEAR_ALL)"));
        }
        if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) != 0 {
            return Err(refused("capset"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_says_how_to_create_it() {
        let e = drop_to_user("no-such-user-trawl-test").unwrap_err();
        assert!(e.to_string().contains("useradd"), "{e}");
        assert!(matches!(
            drop_to_user("a\0b"),
            Err(PrivilegeError::BadName(_))
        ));
    }
}
