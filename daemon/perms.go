package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"

	"custodian/configs"
)

// ErrInsecure: a file or directory of the installation, or a secret it
// reads, could be changed or read by someone other than root and the
// service account. The message names the path, the owner and mode found,
// and the command that fixes it.
var ErrInsecure = errors.New("unsafe ownership or permissions")

// The service account is the effective uid of this process; root is always
// trusted too (it can do anything anyway).
func trustedOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// serviceAccount names the service account for fix commands ("custodian",
// or the uid when it has no name).
func serviceAccount() string {
	uid := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return uid
}

func ownerName(uid uint32) string {
	s := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(s); err == nil {
		return "uid " + s + " (" + u.Username + ")"
	}
	return "uid " + s
}

func trustedOwners() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return "root or " + serviceAccount()
}

// modeString prints a mode as chmod reads it (1777, 0640).
func modeString(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	return fmt.Sprintf("%04o", n)
}

func insecure(what, path string, fi fs.FileInfo, uid uint32, rule, fix string) error {
	if what != "" {
		path = what + " " + path
	}
	return fmt.Errorf("%w: %s is owned by %s with mode %s; %s; fix: %s",
		ErrInsecure, path, ownerName(uid), modeString(fi.Mode()), rule, fix)
}

func ownerOf(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

// chownFix is the fix for a path owned by an account custodian does not
// trust. When root runs a command on files that the service account owns,
// the right fix is to run it as that account, not to hand them to root.
func chownFix(uid uint32, path, chmod string) string {
	fix := fmt.Sprintf("chown %s: %s && chmod %s %s, and find out who changed it and what it holds", serviceAccount(), path, chmod, path)
	if os.Geteuid() == 0 {
		owner := ownerName(uid)
		if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
			owner = u.Username
		}
		fix = fmt.Sprintf("if %s is custodian's service account, run custodian as it (sudo -u %s custodian ...); otherwise %s", owner, owner, fix)
	}
	return fix
}

// checkOwnedNotWritable applies StrictModes to one file or directory: owned
// by root or the service account, writable by no one else.
func checkOwnedNotWritable(what, path string, fi fs.FileInfo) error {
	uid := ownerOf(fi)
	rule := "it must be owned by " + trustedOwners() + " and writable by no one else"
	if !trustedOwner(uid) {
		return insecure(what, path, fi, uid, rule, chownFix(uid, path, "go-w"))
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return insecure(what, path, fi, uid, rule, "chmod go-w "+path)
	}
	return nil
}

// checkDataDir checks data_dir the way sshd's StrictModes checks a home
// directory, so that no other account can have swapped or planted anything
// in the installation:
//
//   - data_dir and each of its parent directories up to / (on the path as
//     written and on the path with symbolic links resolved) must be owned by
//     root or the service account (the account running custodian) and be
//     writable by no one else. Exception: a parent above data_dir that is
//     root's and sticky (like /tmp) may be world-writable, since the sticky
//     bit stops others from renaming or removing what they do not own.
//   - everything inside data_dir must be owned by root or the service
//     account and writable by no one else; the private keys
//     (keys/ledger.sign, vault/master.key.age) must not be readable by
//     group or others; symbolic links are refused (custodian makes none,
//     and one could point the vault or the keys elsewhere).
//
// data_dir need not exist yet (init): then its existing parents are
// checked.
func checkDataDir(cfg *configs.Config) error {
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	// The chain as written, and the chain with links resolved, from the
	// nearest existing directory.
	chain := map[string]bool{}
	var existing string
	for p := dataDir; ; p = filepath.Dir(p) {
		chain[p] = true
		if existing == "" {
			if _, err := os.Lstat(p); err == nil {
				existing = p
			}
		}
		if filepath.Dir(p) == p {
			break
		}
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return fmt.Errorf("data_dir %s: %w", dataDir, err)
	}
	for p := resolved; ; p = filepath.Dir(p) {
		chain[p] = true
		if filepath.Dir(p) == p {
			break
		}
	}
	resolvedDataDir := ""
	if existing == dataDir {
		resolvedDataDir = resolved
	}
	paths := make([]string, 0, len(chain))
	for p := range chain {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			continue // its directory is checked here, its target on the resolved chain
		}
		isDataDir := p == dataDir || p == resolvedDataDir
		what := "data_dir's parent"
		if isDataDir {
			what = "data_dir"
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s %s is not a directory", what, p)
		}
		uid := ownerOf(fi)
		if !isDataDir && uid == 0 && fi.Mode()&fs.ModeSticky != 0 {
			continue // root's sticky directory, such as /tmp
		}
		if err := checkOwnedNotWritable(what, p, fi); err != nil {
			return err
		}
	}
	if resolvedDataDir == "" {
		return nil // data_dir does not exist yet
	}
	return checkContents(cfg, resolvedDataDir)
}

// checkContents walks data_dir (resolved); see checkDataDir.
func checkContents(cfg *configs.Config, root string) error {
	rel := func(p string) string {
		r, err := filepath.Rel(cfg.DataDir, p)
		if err != nil {
			return p
		}
		return r
	}
	private := map[string]bool{
		rel(cfg.SigningKeyPath()):                            true,
		filepath.Join(rel(cfg.VaultDir()), "master.key.age"): true,
	}
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walk (a running daemon's temporary file)
		}
		if err != nil {
			return err
		}
		if p == root {
			return nil // checked with the parents
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		shown := filepath.Join(cfg.DataDir, mustRel(root, p))
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			return fmt.Errorf("%w: %s is a symbolic link (to %s); nothing in data_dir may be a link, since one could point the vault or the keys elsewhere; fix: rm %s and put the real file or directory there",
				ErrInsecure, shown, target, shown)
		}
		if err := checkOwnedNotWritable("", shown, fi); err != nil {
			return err
		}
		if private[mustRel(root, p)] && fi.Mode().Perm()&0o077 != 0 {
			return insecure("private key", shown, fi, ownerOf(fi), "it must be readable by no one but its owner", "chmod go-rwx "+shown)
		}
		return nil
	})
}

func mustRel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

// CheckSecretFile refuses a private key or passphrase file that group or
// others could read (as ssh refuses an "UNPROTECTED PRIVATE KEY FILE") or
// that someone other than root or the service account owns. what names the
// configuration field or flag. A file that does not exist is not an error
// here: the command that reads it reports that.
func CheckSecretFile(what, path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, path, err)
	}
	uid := ownerOf(fi)
	rule := "a private key or passphrase must be owned by " + trustedOwners() + " and readable by no one else"
	if !trustedOwner(uid) {
		return insecure(what, path, fi, uid, rule, chownFix(uid, path, "go-rwx"))
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return insecure(what, path, fi, uid, rule, "chmod go-rwx "+path)
	}
	return nil
}

// CheckSourceSecrets applies CheckSecretFile to every source's key_file and
// key_passphrase_file, and to the notification secrets (the SMTP
// password_file and each webhook's secret_file).
func CheckSourceSecrets(cfg *configs.Config) error {
	if err := checkSourceKeys(cfg); err != nil {
		return err
	}
	if s := cfg.Notify.SMTP; s != nil && s.PasswordFile != "" {
		if err := CheckSecretFile("notify.smtp.password_file", s.PasswordFile); err != nil {
			return err
		}
	}
	for i, w := range cfg.Notify.Webhooks {
		if err := CheckSecretFile(fmt.Sprintf("notify.webhooks[%d].secret_file", i), w.SecretFile); err != nil {
			return err
		}
	}
	return nil
}

func checkSourceKeys(cfg *configs.Config) error {
	names := make([]string, 0, len(cfg.Sources))
	for name := range cfg.Sources {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := cfg.Sources[name]
		if s == nil {
			continue
		}
		for _, f := range []struct{ field, path string }{{"key_file", s.KeyFile}, {"key_passphrase_file", s.KeyPassphraseFile}} {
			if f.path == "" {
				continue
			}
			if err := CheckSecretFile("sources."+name+"."+f.field, f.path); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckDataDir applies the StrictModes checks that init and serve apply to
// data_dir, its parents and everything in it (see checkDataDir), for
// custodian doctor.
func CheckDataDir(cfg *configs.Config) error { return checkDataDir(cfg) }

// CheckConfigFile refuses a configuration file that someone other than root
// or the service account owns or can write: it names the keys and the
// sources custodian trusts.
func CheckConfigFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("configuration file %s: %w", path, err)
	}
	return checkOwnedNotWritable("configuration file", path, fi)
}
