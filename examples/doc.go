// Package examples holds small corio programs, one concept each; every
// subdirectory is a main package with its run command in its package comment.
package examples
