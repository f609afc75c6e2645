// Command etcd is the stock etcd server, built from go.etcd.io/etcd/server/v3.
//
// go.etcd.io/etcd/server/v3 carries replace directives, so it cannot be
// installed with go install; this wrapper module calls its entry point instead.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
