module github.com/openrpcbind/rpcbind

go 1.26.8

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/davecgh/go-xdr v0.0.0-20161123171359-e6a2ba005892
	golang.org/x/sys v0.50.0
	golang.org/x/time v0.16.0
)
