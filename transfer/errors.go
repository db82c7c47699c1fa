package transfer

import "errors"

// Errors of connecting to a source.
var (
	// ErrConnect: the TCP connection or SSH handshake failed.
	ErrConnect = errors.New("cannot connect")
	// ErrAuth: the server refused our public key.
	ErrAuth = errors.New("authentication refused")
	// ErrHostKeyUnknown: the server's host key is not in known_hosts.
	ErrHostKeyUnknown = errors.New("host key unknown")
	// ErrHostKeyChanged: known_hosts holds a different key for this server.
	ErrHostKeyChanged = errors.New("host key changed")
	// ErrNoSessions: the server accepts the connection but refuses every
	// SFTP session on it (OpenSSH MaxSessions 0): a configuration that
	// cannot work, so it is not retried.
	ErrNoSessions = errors.New("server refuses SFTP sessions")
)

// Errors of running a job.
var (
	// ErrUnknownJob: no job of that name is configured.
	ErrUnknownJob = errors.New("unknown job")
	// ErrJobRunning: the job is already running; runs of one job never overlap.
	ErrJobRunning = errors.New("job is already running")
)

// Errors of transferring one file. They are retried; nothing is stored.
var (
	// ErrChanged: the remote file's size or time changed during the transfer.
	ErrChanged = errors.New("remote file changed during transfer")
	// ErrShort: fewer or more bytes arrived than the server's size said.
	ErrShort = errors.New("size mismatch")
	// ErrChecksumFile: the sidecar or manifest is missing or unreadable.
	ErrChecksumFile = errors.New("checksum file problem")
)
