package server

// SetBetweenSettleChunks sets a function run between two chunks of a
// multiple ack's settle (nil for none), for tests of what may happen there.
func SetBetweenSettleChunks(f func()) { betweenSettleChunks = f }

// SetAfterConsumerListed sets a function run when a new consumer is in its
// channel's list but not yet subscribed to its queue (nil for none).
func SetAfterConsumerListed(f func()) { afterConsumerListed = f }

// ExpireConsumersNow does what the consumer-timeout monitor does with
// every open channel that holds a delivery, as if it had timed out.
func ExpireConsumersNow(s *Server) {
	for _, c := range s.openConns() {
		for _, ch := range c.openChannels() {
			if ch.expireDeliveries(1<<62, func(int64) int64 { return 0 }, 1) {
				c.timedOut.Store(true)
			}
		}
	}
}
