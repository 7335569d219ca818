// Command bench measures corio against its peers (Go's net, and others when
// available) on the same workload in one run and prints a table of ratios.
package main

func main() {}
