// Package vault is custodian's encrypted object store: a directory of
// immutable objects, each encrypted with age (https://age-encryption.org) to
// a key of its own, which is kept apart, wrapped to one X25519 master key.
//
// Key management. Init generates the master identity. Its public key is kept
// in master.pub; its private key, in age-keygen format, is kept in
// master.key.age, encrypted with an operator passphrase through age's scrypt
// recipient. Open loads only the public key, so the ingest daemon can store
// objects without ever holding a secret. Reading requires Unlock, which
// derives the key from the passphrase and checks that it matches master.pub.
// Because every file is plain age, an operator can recover data with the stock
// CLI alone: "age -d master.key.age > master.txt; age -d -i master.txt
// keys/xx/ID.key > obj.txt; age -d -i obj.txt objects/xx/ID.age".
// Losing the passphrase or master.key.age loses every object.
//
// Object format. An object is a standard age file stored at
// objects/<first 2 hex>/<id>.age, where the ID is 128 random bits in
// lowercase hex, encrypted to an X25519 key made for that object alone
// (the object key). The object key, as an age identity, is stored in
// keys/<first 2 hex>/<id>.key (0600), age-encrypted to the master key:
// the writer needs only the master public key. age encrypts the payload
// with ChaCha20-Poly1305 in 64 KiB STREAM chunks; header and every chunk
// are authenticated and the final chunk is marked, so modification,
// truncation and extension are all detected on read. Plaintext never
// touches the disk, nor does an object key in the clear. Object IDs are
// validated before any path is built from them.
//
// Destruction (cryptographic erase, NIST SP 800-88). Because an object's
// key lives in a small file of its own and never in the ledger's bbolt
// file (which does not zero freed pages), [Vault.Destroy] can erase it:
// overwrite with random bytes, fsync, unlink; then the ciphertext the
// same way. Any copy of the ciphertext (a stray copy, an export of the
// encrypted file) is then undecryptable even with the master key. Copies
// of the key file itself, in backups taken before, stay decryptable with
// the master key that wrapped them: [Vault.Rotate] makes a new master key,
// re-wraps every object key (payloads are not re-encrypted) and destroys
// the old master key file, so those copies depend on a key that only old
// backups still hold (docs/destruction.md).
//
// Legacy objects. Objects written before per-object keys have no key
// file; they are age files encrypted to the master key directly, and Open
// reads them with the master key. They keep that format until the next
// Rotate, which gives each a key of its own (re-encrypting its payload
// once, since its data key is in its own header) before the master key is
// replaced.
//
// Durability. Every file is written to a temporary name, made durable,
// renamed into place, and the directories concerned are made durable. A
// single object does this with fsyncs: it exists once Writer.Commit has
// returned. Many objects finishing together use Writer.Close (write, rename,
// no fsync) and then Vault.Flush, which syncs the filesystem once for all of
// them (syncfs(2): the same guarantee as fsyncing every file and directory,
// at the cost of one journal commit); such an object may be referenced only
// after a Flush that started after its Close. Init writes master.pub
// last, so an interrupted Init never yields a usable vault whose private key
// was not saved. Open refuses a vault whose private parts are accessible to
// group or other users (ErrPermissions).
//
// Crash recovery. An object being written lives in tmp/<id>.partial, holding
// ciphertext only. Its key file is stored before the ciphertext is renamed
// into objects/, so a committed object always has its key; a key without
// its object is an orphan like an unreferenced object (SetAside moves
// both). After a crash, Recover empties tmp/. A rotation interrupted after
// its commit point is settled by ResumeRotation, given the key the caller's
// ledger trusts. Objects that were
// committed but are not referenced by the caller's metadata (for example a
// crash between Commit and recording the ID) are the caller's to find with
// List and delete with Remove.
package vault
