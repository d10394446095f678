// Command etcd is the etcd server, built from go.etcd.io/etcd/server/v3.
//
// etcd's own main package lives in the go.etcd.io/etcd/v3 module, whose
// go.mod uses local replace directives and so cannot be required from here;
// this is the same two lines as its main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
