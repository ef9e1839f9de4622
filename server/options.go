package server

import (
	"log/slog"
	"time"

	"github.com/warrenmq/warren/internal/sysmem"
	"github.com/warrenmq/warren/queue"
)

// Options configure a Server. Use DefaultOptions and change what you need;
// the zero value of a field means its default.
type Options struct {
	// AMQPAddr is the TCP address the AMQP listener binds, host:port.
	// Default ":5672"; "127.0.0.1:0" picks a free port (see Server.Addr).
	AMQPAddr string
	// DataDir is where persistent state lives. Default "./warren-data".
	DataDir string
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
	// MaxMessageSize is the largest message body accepted, in bytes; a
	// larger one closes the channel with 406. Default 128 MiB.
	MaxMessageSize int64
	// FrameMax is the frame_max offered in connection.tune, in bytes.
	// Default 131072.
	FrameMax uint32
	// ChannelMax is the channel_max offered in connection.tune. Default 2047.
	ChannelMax uint16
	// Heartbeat is the heartbeat interval offered in connection.tune, sent
	// in whole seconds. Default 60 s; a negative value offers 0 (none).
	Heartbeat time.Duration
	// ConsumerTimeout closes a channel, with 406, once it holds a delivery
	// unacknowledged for longer, and requeues its deliveries (RabbitMQ's
	// consumer_timeout; see consumertimeout.go). Default 30 minutes; a
	// negative value turns it off.
	ConsumerTimeout time.Duration
	// HandshakeTimeout bounds the time from accepting a socket to
	// connection.open. Default 10 s.
	HandshakeTimeout time.Duration
	// CloseTimeout bounds how long the server waits for close-ok after
	// sending connection.close. Default 3 s.
	CloseTimeout time.Duration
	// MaxTxOps bounds the publishes and acknowledgements one transaction may
	// hold; past it the channel is closed with 406. Default 1,000,000.
	MaxTxOps int
	// MaxTxBytes bounds the message body bytes one transaction may hold.
	// Default 1 GiB.
	MaxTxBytes int64
	// Users maps user names to passwords. Default: guest/guest.
	Users map[string]string
	// LoopbackUsers may only connect from a loopback address. Default:
	// guest, as in RabbitMQ.
	LoopbackUsers []string
	// QueueWindow is roughly how many bytes of ready messages each queue
	// keeps in memory; past it messages are paged out to the store.
	// Default 8 MiB.
	QueueWindow int64
	// QueueMemory is roughly how many bytes of ready messages all queues
	// keep in memory together; past it they page messages out as past
	// their windows (each may still keep queue.BudgetFloor). 0 means
	// DefaultQueueMemory(), or half of MemoryHighWatermark if that is lower
	// (RabbitMQ pages at half its watermark); negative means no bound but
	// the windows.
	QueueMemory int64
	// DiskFreeLimit is the room, in bytes, below which the free disk space
	// alarm blocks publishing connections, as RabbitMQ's disk_free_limit:
	// the free space of the file system holding DataDir plus the store's
	// free pages (which it reuses before growing its file). Default
	// 50,000,000 (RabbitMQ's 50MB); negative turns the alarm off.
	DiskFreeLimit int64
	// MemoryHighWatermark is the memory, in bytes, at and above which the
	// memory alarm blocks publishing connections, as RabbitMQ's
	// vm_memory_high_watermark: the Go runtime's memory in use (heap spans
	// in use, stacks and the runtime's own; see memalarm.go), which is the
	// whole process's: a program that embeds the broker counts too.
	// Default DefaultMemoryHighWatermark(); negative turns the alarm off.
	MemoryHighWatermark int64
	// MemoryUsed, if set, is read in place of the Go runtime's memory by the
	// memory alarm. For tests.
	MemoryUsed func() int64
	// DiskFree, if set, is read in place of the file system's free space
	// (statfs) by the free disk space alarm. For tests.
	DiskFree func(dir string) (int64, error)
	// StoreFault, if set, is called before every store commit; an error
	// fails that commit as a disk error would. For tests.
	StoreFault func() error
	// StoreCheckpointFault, if set, is called at the start of every
	// checkpoint of the store's log into bbolt that has changes to apply,
	// inside its bbolt transaction; an error fails the checkpoint, and it
	// is retried. For tests, which may also block in it (holding bbolt's
	// write lock) to stand for a slow disk.
	StoreCheckpointFault func() error
}

// DefaultOptions returns a fresh Options with every default filled in.
func DefaultOptions() Options {
	return Options{
		AMQPAddr:         ":5672",
		DataDir:          "./warren-data",
		Logger:           slog.New(slog.DiscardHandler),
		MaxMessageSize:   128 << 20,
		FrameMax:         131072,
		ChannelMax:       2047,
		Heartbeat:        60 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		CloseTimeout:     3 * time.Second,
		ConsumerTimeout:  DefaultConsumerTimeout,
		MaxTxOps:         1_000_000,
		MaxTxBytes:       1 << 30,
		Users:            map[string]string{"guest": "guest"},
		LoopbackUsers:    []string{"guest"},
		QueueWindow:      queue.DefaultWindow,
		QueueMemory:      DefaultQueueMemory(),
		DiskFreeLimit:    DefaultDiskFreeLimit,

		MemoryHighWatermark: DefaultMemoryHighWatermark(),
	}
}

// DefaultMemoryWatermarkShare is the default memory alarm's share of the
// memory the process may use, RabbitMQ's vm_memory_high_watermark.relative.
const DefaultMemoryWatermarkShare = 0.4

// DefaultMemoryHighWatermark is the default Options.MemoryHighWatermark:
// MemoryWatermark(DefaultMemoryWatermarkShare); -1 (off) where the memory
// cannot be read.
func DefaultMemoryHighWatermark() int64 {
	if n, ok := MemoryWatermark(DefaultMemoryWatermarkShare); ok {
		return n
	}
	return -1
}

// MemoryWatermark is share of the memory the process may use (the
// machine's, or its container's limit if lower), in bytes and at least 1,
// for Options.MemoryHighWatermark; false where that memory cannot be read.
func MemoryWatermark(share float64) (int64, bool) {
	n, ok := sysmem.Limit()
	if !ok {
		return 0, false
	}
	return max(int64(float64(n)*share), 1), true
}

// DefaultDiskFreeLimit is the default Options.DiskFreeLimit, RabbitMQ's.
const DefaultDiskFreeLimit = 50_000_000

// DefaultQueueMemory is the default QueueMemory: a fifth of the memory the
// process may use (the machine's, or its container's limit if lower), the
// share at which RabbitMQ's default settings start paging messages out
// (half of its memory alarm's 0.4); 1 GiB where that cannot be read.
func DefaultQueueMemory() int64 {
	if n, ok := sysmem.Limit(); ok {
		return n / 5
	}
	return 1 << 30
}

// withDefaults fills zero fields from DefaultOptions.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.AMQPAddr == "" {
		o.AMQPAddr = d.AMQPAddr
	}
	if o.DataDir == "" {
		o.DataDir = d.DataDir
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = d.MaxMessageSize
	}
	if o.FrameMax == 0 {
		o.FrameMax = d.FrameMax
	}
	if o.ChannelMax == 0 {
		o.ChannelMax = d.ChannelMax
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = d.Heartbeat
	}
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = d.HandshakeTimeout
	}
	if o.ConsumerTimeout == 0 {
		o.ConsumerTimeout = d.ConsumerTimeout
	}
	if o.CloseTimeout == 0 {
		o.CloseTimeout = d.CloseTimeout
	}
	if o.MaxTxOps == 0 {
		o.MaxTxOps = d.MaxTxOps
	}
	if o.MaxTxBytes == 0 {
		o.MaxTxBytes = d.MaxTxBytes
	}
	if o.Users == nil {
		o.Users = d.Users
	}
	if o.LoopbackUsers == nil {
		o.LoopbackUsers = d.LoopbackUsers
	}
	if o.QueueWindow <= 0 {
		o.QueueWindow = d.QueueWindow
	}
	switch {
	case o.DiskFreeLimit == 0:
		o.DiskFreeLimit = d.DiskFreeLimit
	case o.DiskFreeLimit < 0:
		o.DiskFreeLimit = 0 // the alarm is off
	}
	if o.MemoryHighWatermark == 0 {
		o.MemoryHighWatermark = d.MemoryHighWatermark
	}
	if o.QueueMemory == 0 {
		o.QueueMemory = d.QueueMemory
		if o.MemoryHighWatermark > 0 {
			o.QueueMemory = min(o.QueueMemory, max(o.MemoryHighWatermark/2, 1))
		}
	}
	return o
}
