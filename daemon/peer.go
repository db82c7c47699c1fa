package daemon

import (
	"context"
	"crypto/tls"
	"net"
	"os/user"
	"strconv"
	"syscall"

	"custodian/service"
)

// Actor is the person an API request is attributed to.
type Actor = service.Actor

type peerKey struct{}

// withPeer stores where a connection comes from in its context: over the
// Unix socket, the connecting process's credentials, which the kernel
// vouches for (the client cannot choose them); over TLS, the remote
// address.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		return context.WithValue(ctx, peerKey{}, service.Origin{Via: "https", UID: -1, Remote: tc.RemoteAddr().String()})
	}
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
	o := service.Origin{Via: "socket", UID: int(cred.Uid), PID: int(cred.Pid), HostUser: "uid:" + strconv.Itoa(int(cred.Uid))}
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		o.HostUser = u.Username
	}
	return context.WithValue(ctx, peerKey{}, o)
}

// originFrom returns where the request came from; without peer
// credentials, an unknown origin.
func originFrom(ctx context.Context) service.Origin {
	o, ok := ctx.Value(peerKey{}).(service.Origin)
	if !ok {
		return service.Origin{UID: -1}
	}
	return o
}

func umask(m int) int { return syscall.Umask(m) }
