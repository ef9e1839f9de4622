package server

// SetBetweenSettleChunks sets a function run between two chunks of a
// multiple ack's settle (nil for none), for tests of what may happen there.
func SetBetweenSettleChunks(f func()) { betweenSettleChunks = f }
