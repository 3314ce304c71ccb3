// Command ec2sim runs the EC2 + IMDS simulator on loopback.
package main

func main() {}
