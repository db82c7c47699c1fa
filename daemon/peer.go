package daemon

import (
	"context"
	"fmt"
	"net"
	"os/user"
	"strconv"
	"syscall"

	"custodian/service"
)

// Actor is the person an API request is attributed to.
type Actor = service.Actor

type peerKey struct{}

// withPeer stores the connecting process's credentials in the connection's
// context. The kernel vouches for them; the client cannot choose them.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return ctx
	}
	a := Actor{UID: int(cred.Uid), PID: int(cred.Pid), Name: "uid:" + strconv.Itoa(int(cred.Uid))}
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		a.Name = u.Username
	}
	return context.WithValue(ctx, peerKey{}, a)
}

func actorFrom(ctx context.Context) (Actor, error) {
	a, ok := ctx.Value(peerKey{}).(Actor)
	if !ok {
		return Actor{}, fmt.Errorf("cannot identify the caller: no peer credentials")
	}
	return a, nil
}

func umask(m int) int { return syscall.Umask(m) }
