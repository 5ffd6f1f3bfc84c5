// Package media is the root of the media plane's leaf packages: the shared
// packet cache (packetcache), the per-subscriber stream rewriter (rewrite),
// the keyframe-request throttle (keyframe), layer selection (bwe), batched
// UDP sends (udpbatch) and the forwarding fan-out that ties them together
// (fanout). The packages under it know nothing of SQL, GraphQL or
// classrooms; the SFU and the broadcast build on them.
package media
