package main

import (
	"context"
	"fmt"
	"io"
)

func cmdRender(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "nad" {
		fmt.Fprintln(stderr, "usage: nodeprep render nad [--root DIR] [--user-data FILE]")
		return exitInvalid
	}
	fmt.Fprintln(stderr, "nodeprep render nad: not available in this build")
	return exitInvalid
}
