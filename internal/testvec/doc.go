// Package testvec loads the reference wire exchanges in
// testdata/vectors/exchanges.txt: 186 calls and the replies that Debian's
// rpcbind 1.2.6 sent to them, captured on the wire (see
// /work/shared/testvectors/README.md for how they were made).
//
// The exchanges are evidence: tests compare our bytes with them and never
// regenerate them from our own encoder. The file is parsed strictly; any line
// the parser does not understand is an error, so a damaged file fails loudly
// instead of silently dropping a golden.
package testvec
