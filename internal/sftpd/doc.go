// Package sftpd is a small, in-process SFTP server that serves one directory
// of the local filesystem. The product's demo command uses it to stand in for
// the registry's SFTP host, and tests use it to exercise the pull client
// against a real SSH/SFTP protocol stack with faults injected on demand.
//
// # Design
//
// The SSH transport is golang.org/x/crypto/ssh with its default (modern)
// algorithm set, which includes aes128-gcm@openssh.com and
// chacha20-poly1305@openssh.com. Only public-key authentication is offered:
// a connection is accepted when its user name equals [Config.User] and its key
// is one of [Config.AuthorizedKeys]. Password and keyboard-interactive
// authentication are never offered. The host key is [Config.HostKey], or a
// fresh ed25519 key; [Server.KnownHostsLine] gives the line a client pins it
// with.
//
// Each accepted "session" channel may request the "sftp" subsystem, which is
// served by github.com/pkg/sftp's request server with handlers backed by an
// [os.Root] opened on [Config.Root]. Paths arrive from pkg/sftp already
// cleaned and absolute ("/../etc/passwd" becomes "/etc/passwd", i.e. a file
// inside the root); the handlers additionally reject any path that is not a
// clean absolute slash path, and os.Root refuses every access that would
// leave the root, including through symbolic links. Paths seen by hooks and
// logs are those slash paths ("/" is the root directory itself).
//
// The server is read-mostly, mirroring what a pull client needs:
//
//   - stat, lstat, fstat, readlink, readdir (entries sorted by name);
//   - open for reading; reads go through io.ReaderAt, so pkg/sftp's
//     concurrent reads (File.WriteTo) are served in parallel;
//   - remove (files only), rmdir (directories only), mkdir (0755);
//   - rename with SFTPv3/OpenSSH semantics (fails when the target exists) and
//     posix-rename@openssh.com (replaces the target);
//   - everything else (writes, setstat, symlink, link, statvfs) is
//     refused with "permission denied" or "operation unsupported".
//
// # Fault injection
//
// [Hooks] let a test corrupt, truncate, fail or stall reads, lie about file
// metadata, and drop a connection after a number of bytes has been served.
// [Server.DropAll] aborts every live connection at once. A dropped connection
// is closed with SO_LINGER=0, so the client sees a reset rather than an
// orderly shutdown.
//
// # Lifecycle
//
// [Start] listens and serves in background goroutines until [Server.Close] is
// called or the context passed to Start is cancelled. Close stops accepting,
// aborts live connections and waits for every goroutine the server started,
// including in-flight hook calls, so a hook that stalls should do so for a
// bounded time.
package sftpd
