// Package confirm tracks publisher confirms for one channel in confirm mode.
//
// A Tracker numbers publishes from 1, records each one's outcome as it is
// settled (in any order), and turns the settled prefix into the fewest
// basic.ack and basic.nack frames, always in tag order: a run of acks is sent
// as one basic.ack with multiple=true. It does no I/O and is not safe for
// concurrent use; the channel's owner (the connection reader) drives it.
package confirm
