// Package githubhook receives GitHub webhook deliveries: it refuses sources
// off an allow-list, reads the raw body under a size cap and a process-wide
// memory budget, checks the HMAC signature before parsing anything,
// routes by event, and turns a push payload into a trigger.Push handed to an
// Acceptor. Every bad input gets a 4xx with a clear message; nothing about a
// signature is ever logged or echoed.
package githubhook
