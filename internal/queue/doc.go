// Package queue takes accepted deliveries off the request path and feeds
// them to workers.
package queue
