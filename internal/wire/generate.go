package wire

//go:generate go run ./gen
