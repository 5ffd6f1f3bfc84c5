// Package hls turns a live broadcast into HTTP Live Streaming (RFC 8216)
// for audiences beyond WebRTC fan-out and for CDN caching.
//
// A Packager runs one ffmpeg process per live channel. It is fed the
// channel's RTP packets (one video track, H.264 copied or VP8/VP9
// transcoded to H.264, and one Opus track transcoded to AAC) over loopback
// UDP, described to ffmpeg by an SDP file, and writes a sliding-window
// playlist of MPEG-TS segments into its directory.
//
// A Handler serves those files under /hls/{class}/, each request checked
// against a URL signed by a Signer. Signatures change once an hour, so all
// viewers of a class in that hour share one URL and a CDN in front keeps
// one copy of each segment.
package hls
