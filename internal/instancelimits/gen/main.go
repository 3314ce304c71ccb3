//go:build ignore

// Command gen extracts the per-instance-type network limits from the VPC
// CNI's generated limits file (aws/amazon-vpc-cni-k8s
// pkg/vpc/vpc_ip_resource_limit.go) into limits.tsv. Only numbers are
// taken, read from the file's syntax tree; no VPC CNI code is copied.
//
//	git -C <vpc-cni checkout> show <commit>:pkg/vpc/vpc_ip_resource_limit.go > /tmp/limits.go
//	go run gen/main.go -in /tmp/limits.go -source "aws/amazon-vpc-cni-k8s@<commit> (<tag>)" > limits.tsv
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log"
	"os"
	"sort"
	"strconv"
)

type limits struct {
	enis, ipv4, cards int
	hypervisor        string
	metal             bool
}

func main() {
	in := flag.String("in", "", "vpc_ip_resource_limit.go")
	source := flag.String("source", "", "repository@commit the file came from")
	flag.Parse()
	f, err := parser.ParseFile(token.NewFileSet(), *in, nil, 0)
	if err != nil {
		log.Fatal(err)
	}
	all := map[string]limits{}
	ast.Inspect(f, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		name, ok := kv.Key.(*ast.BasicLit)
		body, ok2 := kv.Value.(*ast.CompositeLit)
		if !ok || !ok2 || name.Kind != token.STRING {
			return true
		}
		var l limits
		for _, e := range body.Elts {
			field, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			switch field.Key.(*ast.Ident).Name {
			case "ENILimit":
				l.enis = atoi(field.Value)
			case "IPv4Limit":
				l.ipv4 = atoi(field.Value)
			case "NetworkCards":
				l.cards = len(field.Value.(*ast.CompositeLit).Elts)
			case "HypervisorType":
				l.hypervisor, _ = strconv.Unquote(field.Value.(*ast.BasicLit).Value)
			case "IsBareMetal":
				l.metal = field.Value.(*ast.Ident).Name == "true"
			}
		}
		t, _ := strconv.Unquote(name.Value)
		all[t] = l
		return false
	})
	if len(all) == 0 {
		log.Fatal("no instance types found")
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Printf("# Per-instance-type ENI limits, extracted by gen/main.go from %s\n", *source)
	fmt.Printf("# pkg/vpc/vpc_ip_resource_limit.go (generated there from EC2 DescribeInstanceTypes). Do not edit.\n")
	fmt.Printf("# type\tENIs per network card\tIPv4 addresses per ENI\tnetwork cards\thypervisor\tbare metal\n")
	for _, n := range names {
		l := all[n]
		fmt.Printf("%s\t%d\t%d\t%d\t%s\t%t\n", n, l.enis, l.ipv4, l.cards, l.hypervisor, l.metal)
	}
	_ = os.Stdout.Sync()
}

func atoi(e ast.Expr) int {
	lit, ok := e.(*ast.BasicLit)
	if !ok {
		log.Fatalf("not a literal: %T", e)
	}
	n, err := strconv.Atoi(lit.Value)
	if err != nil {
		log.Fatal(err)
	}
	return n
}
