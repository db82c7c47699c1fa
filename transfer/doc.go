// Package transfer pulls registry files from SFTP sources and proves each one
// arrived whole before it is stored.
//
// A job run lists the source's remote directory, refuses names that are not
// plain file names, skips files already on the ledger, waits for files still
// being written (ready marker or settle time), checks change-file sequence
// numbers, and then takes each file in one streaming pass: pkg/sftp's
// concurrent reads feed a pipeline that hashes (SHA-256 and the sidecar's
// algorithm), counts records and encrypts into the vault at the same time,
// with hashing and encryption on different cores. Plaintext exists only in
// the pipeline's buffers; memory is bounded by the number of reads in flight,
// whatever the file size.
//
// Only after the ciphertext is durable (written to a temp name, renamed, then
// flushed to disk together with whatever other files finished at the same
// moment) is the dataset committed to the ledger, in one transaction with its
// event, again grouped with concurrent commits; only after that is the remote
// file deleted or moved, if the job asks for it. Grouping changes the cost,
// not the guarantee: no file is reported stored before it is durable. A
// crash between any two steps leaves either nothing (the temp object is
// removed on restart), an orphan object with no dataset (set aside, still
// encrypted, on restart; the file is pulled again), or a complete dataset whose remote file is still
// there (the ledger's remote index keeps it from being ingested twice).
//
// Verification outcomes: a file whose digest, size or record count disagrees
// with what the provider declared is stored encrypted in state quarantined
// with the reason, never as verified. Transfer failures (connection drops,
// stalls, a file changing under us) store nothing, are recorded on the ledger
// and retried with exponential backoff up to the job's cap.
//
// The files, one concern each:
//
//   - runner.go: Runner, a run of one job (configuration hot-swap, retries
//     with backoff, the worker pool), RunRequest, RunResult, FileOutcome.
//   - plan.go: the listing becomes candidates: companions and the pattern,
//     refusals, links, files already on the ledger or re-sent; planOne does
//     the same for the one file Repull pulls again. sequence.go holds the
//     change-file sequence check and the last accepted sequence number.
//   - expect.go: what the provider declared, from sidecars and manifests.
//   - ingest.go: receive (one file, one pass, into one durable vault object,
//     returning what was observed), dataset (the ledger record), commit (the
//     ledger transaction), and admit, the three together for a run and for
//     Repull alike.
//   - judge.go: judge, the verdict as a pure function of Expected and
//     Observed, with no I/O; it is table-tested and fuzzed, as the parsers of
//     transfer/integrity are.
//   - afterpull.go: after_pull (delete or move) once a dataset is durable.
//   - actions.go: officer actions on datasets (Release, Repull).
//   - changes.go: change files several at a time, committed in sequence
//     order; after one fails, the later ones wait.
//   - multiread.go: one large file in ranges over several sessions and
//     connections, reassembled in order; fetch.go: small files read whole
//     while their sidecars are, and the server's session limit.
//   - store.go: Store, the part of the vault a run needs. ssh.go: Remote,
//     the SSH connection and its SFTP sessions. pipeline.go: the single pass.
//   - scrub.go: the scrub plan from the ledger; checking an object is the
//     vault's (vault.Vault.CheckObject).
//
// Rules over data live in transfer/integrity (checksum files, names, record
// counting, sequence numbers, and the names of the keys of a dataset's
// integrity record); configuration arrives parsed (configs).
package transfer
