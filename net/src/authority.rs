//! etcdctl 3.4 dials some endpoints itself (`endpoint status`, `endpoint hashkv`, `snapshot
//! save`, `move-leader`) and sends the endpoint as written, scheme included, as HTTP/2's
//! `:authority` (`http://127.0.0.1:2379`). That is no valid authority, and the HTTP/2 server
//! under hyper resets such a request with PROTOCOL_ERROR, where etcd's Go server lets it pass.
//! [`AuthorityRepair`] sits between a client connection and hyper and drops the scheme from
//! such an authority in the client's header blocks. Every other byte passes unchanged, and
//! connections that do not start with the HTTP/2 preface (HTTP/1.1) pass untouched.
//!
//! The repair keeps each header field's HPACK representation and only shortens the value, so
//! the server's dynamic table holds the same entries as the client's at the same positions
//! (each no larger than the client's, so none is evicted before the client's copy is): later
//! references to an entry stay valid without decoding the whole table.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use loona_hpack::huffman::HuffmanDecoder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a client sends first on an HTTP/2 connection.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// Every HTTP/2 peer accepts frames this large; a rewritten block is cut into pieces of it.
const MIN_MAX_FRAME: usize = 16_384;
/// A header block larger than this (over all its frames) is passed on as it is (hyper refuses
/// header lists over 16 KiB anyway).
const MAX_BLOCK: usize = 64 * 1024;
/// The name repaired, and the longest authority value worth decoding.
const AUTHORITY: &[u8] = b":authority";
const MAX_AUTHORITY: usize = 1024;
/// The static table's index of `:authority` (RFC 7541, appendix A).
const AUTHORITY_INDEX: u64 = 1;

/// Where the connection is.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// Not yet known to be HTTP/2.
    Preface,
    /// HTTP/2 frames, header blocks repaired.
    Frames,
    /// Everything else passes unchanged.
    Passthrough,
}

/// A client connection whose HTTP/2 `:authority` values are repaired on the way in.
pub struct AuthorityRepair<S> {
    inner: S,
    mode: Mode,
    /// Bytes read and not yet processed.
    raw: Vec<u8>,
    /// Processed bytes not yet handed to the reader, from `ready_at`.
    ready: Vec<u8>,
    ready_at: usize,
    /// Bytes of the current non-HEADERS frame still to pass through as they come.
    passing: usize,
    eof: bool,
}

impl<S> AuthorityRepair<S> {
    /// Repair what arrives on `inner`.
    pub fn new(inner: S) -> Self {
        AuthorityRepair {
            inner,
            mode: Mode::Preface,
            raw: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            passing: 0,
            eof: false,
        }
    }

    /// Move what can be decided from `raw` to `ready`.
    fn process(&mut self) {
        loop {
            let moved = match self.mode {
                Mode::Passthrough => self.pass(self.raw.len()),
                Mode::Preface => self.preface(),
                Mode::Frames if self.passing > 0 => {
                    let n = self.passing.min(self.raw.len());
                    self.passing -= n;
                    self.pass(n)
                }
                Mode::Frames => self.frame(),
            };
            if !moved {
                return;
            }
        }
    }

    fn preface(&mut self) -> bool {
        let n = self.raw.len().min(PREFACE.len());
        if self.raw[..n] != PREFACE[..n] {
            self.mode = Mode::Passthrough;
            return true;
        }
        if n < PREFACE.len() {
            return false;
        }
        self.mode = Mode::Frames;
        self.pass(PREFACE.len())
    }

    /// Handle the frame at the start of `raw`, if enough of it is there.
    fn frame(&mut self) -> bool {
        let Some(head) = FrameHead::parse(&self.raw) else { return false };
        if head.kind != HEADERS {
            self.passing = head.len;
            return self.pass(FRAME_HEADER);
        }
        match header_block_end(&self.raw) {
            BlockEnd::Incomplete if self.raw.len() > MAX_BLOCK => {
                self.mode = Mode::Passthrough;
                true
            }
            BlockEnd::Incomplete => false,
            BlockEnd::Unusual(end) => self.pass(end),
            BlockEnd::Complete(end) => {
                match repair_frames(&self.raw[..end]) {
                    Some(frames) => {
                        self.ready.extend_from_slice(&frames);
                        self.raw.drain(..end);
                    }
                    None => {
                        self.pass(end);
                    }
                }
                true
            }
        }
    }

    /// Hand the first `n` raw bytes on unchanged.
    fn pass(&mut self, n: usize) -> bool {
        if n == 0 {
            return false;
        }
        self.ready.extend(self.raw.drain(..n));
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityRepair<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready_at < this.ready.len() {
                let n = (this.ready.len() - this.ready_at).min(buf.remaining());
                buf.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                if this.ready_at == this.ready.len() {
                    this.ready.clear();
                    this.ready_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.mode == Mode::Passthrough && this.raw.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            // The rest of a frame that is not HEADERS (request bodies): straight into `buf`.
            if this.mode == Mode::Frames && this.passing > 0 && this.raw.is_empty() && buf.remaining() > 0 {
                let room = buf.initialize_unfilled_to(buf.remaining().min(this.passing));
                let mut direct = ReadBuf::new(room);
                if let Poll::Ready(result) = Pin::new(&mut this.inner).poll_read(cx, &mut direct) {
                    result?;
                    let n = direct.filled().len();
                    this.eof = n == 0;
                    this.passing -= n;
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                return Poll::Pending;
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // The end: whatever is left goes on as it is, for hyper to judge.
                    this.eof = true;
                    let rest = this.raw.len();
                    this.pass(rest);
                }
                Poll::Ready(Ok(())) => {
                    this.raw.extend_from_slice(read.filled());
                    this.process();
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthorityRepair<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A frame's 9-byte header.
struct FrameHead {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHead {
    fn parse(bytes: &[u8]) -> Option<FrameHead> {
        let h = bytes.get(..FRAME_HEADER)?;
        Some(FrameHead {
            len: (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }

    fn write(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
    }
}

/// How far the header block starting at a HEADERS frame extends.
enum BlockEnd {
    /// Not all of it has arrived.
    Incomplete,
    /// HEADERS and its CONTINUATIONs end here.
    Complete(usize),
    /// Not followed by the CONTINUATION it needs (hyper will refuse that): pass the HEADERS
    /// frame, which ends here, as it is.
    Unusual(usize),
}

fn header_block_end(bytes: &[u8]) -> BlockEnd {
    let mut at = 0;
    let mut first = true;
    loop {
        let Some(head) = FrameHead::parse(&bytes[at..]) else { return BlockEnd::Incomplete };
        let stream = FrameHead::parse(bytes).map_or(0, |h| h.stream);
        if !first && (head.kind != CONTINUATION || head.stream != stream) {
            return BlockEnd::Unusual(FRAME_HEADER + FrameHead::parse(bytes).map_or(0, |h| h.len));
        }
        let end = at + FRAME_HEADER + head.len;
        if bytes.len() < end {
            return BlockEnd::Incomplete;
        }
        if head.flags & END_HEADERS != 0 {
            return BlockEnd::Complete(end);
        }
        at = end;
        first = false;
    }
}

/// The HEADERS frame (and CONTINUATIONs) in `frames` with the authority repaired; `None` when
/// nothing needs repair or the frames are malformed (they then go on unchanged).
fn repair_frames(frames: &[u8]) -> Option<Vec<u8>> {
    let head = FrameHead::parse(frames)?;
    let payload = frames.get(FRAME_HEADER..FRAME_HEADER + head.len)?;
    let (pad, rest) = match head.flags & PADDED {
        0 => (0, payload),
        _ => (usize::from(*payload.first()?), payload.get(1..)?),
    };
    let rest = rest.get(..rest.len().checked_sub(pad)?)?;
    let (priority, fragment) = match head.flags & PRIORITY {
        0 => (&[][..], rest),
        _ => (rest.get(..5)?, rest.get(5..)?),
    };
    // One frame (the usual case) is read in place; continuations are joined first.
    let mut block = std::borrow::Cow::Borrowed(fragment);
    let mut at = FRAME_HEADER + head.len;
    while at < frames.len() {
        let cont = FrameHead::parse(&frames[at..])?;
        block.to_mut().extend_from_slice(frames.get(at + FRAME_HEADER..at + FRAME_HEADER + cont.len)?);
        at += FRAME_HEADER + cont.len;
    }
    let block = repair_block(&block)?;

    let mut out = Vec::with_capacity(block.len() + 2 * FRAME_HEADER + priority.len());
    let first_room = MIN_MAX_FRAME - priority.len();
    let (first, mut rest) = block.split_at(block.len().min(first_room));
    let flags = (head.flags & (END_STREAM | PRIORITY)) | if rest.is_empty() { END_HEADERS } else { 0 };
    FrameHead::write(&mut out, priority.len() + first.len(), HEADERS, flags, head.stream);
    out.extend_from_slice(priority);
    out.extend_from_slice(first);
    while !rest.is_empty() {
        let (piece, after) = rest.split_at(rest.len().min(MIN_MAX_FRAME));
        FrameHead::write(
            &mut out,
            piece.len(),
            CONTINUATION,
            if after.is_empty() { END_HEADERS } else { 0 },
            head.stream,
        );
        out.extend_from_slice(piece);
        rest = after;
    }
    Some(out)
}

/// An HPACK header block with every `:authority` value written as `scheme://host:port[/...]`
/// cut to `host:port`; `None` when there is none or the block does not parse. Only the repaired
/// values change: everything between them is copied as it is, and nothing when nothing needs it.
fn repair_block(block: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    // How much of `block` `out` already stands for.
    let mut copied = 0;
    let mut at = 0;
    while at < block.len() {
        let prefix_bits = match block[at] {
            // An indexed field (nothing to repair), or a dynamic table size update.
            b if b & 0x80 != 0 => {
                at = integer(block, at, 7)?.1;
                continue;
            }
            b if b & 0xe0 == 0x20 => {
                at = integer(block, at, 5)?.1;
                continue;
            }
            b if b & 0xc0 == 0x40 => 6, // literal, incremental indexing
            _ => 4,                     // literal without indexing, or never indexed
        };
        let (name_index, mut next) = integer(block, at, prefix_bits)?;
        let is_authority = if name_index == 0 {
            let name = string(block, next)?;
            next = name.end;
            name.is(block, AUTHORITY)
        } else {
            name_index == AUTHORITY_INDEX
        };
        let value = string(block, next)?;
        // Other values pass undecoded; an authority is short.
        let decoded = (is_authority && value.len() <= MAX_AUTHORITY).then(|| value.octets(block)).flatten();
        if let Some(authority) = decoded.as_deref().and_then(strip_scheme) {
            let out = out.get_or_insert_with(|| Vec::with_capacity(block.len()));
            out.extend_from_slice(&block[copied..next]);
            write_raw_string(out, authority);
            copied = value.end;
        }
        at = value.end;
    }
    let mut out = out?;
    out.extend_from_slice(&block[copied..]);
    Some(out)
}

/// `host:port` of an authority written as a URL, if it is one.
fn strip_scheme(value: &[u8]) -> Option<&[u8]> {
    let start = value.windows(3).position(|w| w == b"://")? + 3;
    let rest = &value[start..];
    let end = rest.iter().position(|b| *b == b'/').unwrap_or(rest.len());
    Some(&rest[..end])
}

/// An HPACK integer with an `n`-bit prefix starting at `block[at]`: its value and where it
/// ends (RFC 7541, 5.1). Values beyond what a header block can mean are refused.
fn integer(block: &[u8], at: usize, n: u32) -> Option<(u64, usize)> {
    let max = (1u64 << n) - 1;
    let mut value = u64::from(*block.get(at)?) & max;
    let mut at = at + 1;
    if value < max {
        return Some((value, at));
    }
    let mut shift = 0;
    loop {
        let b = *block.get(at)?;
        at += 1;
        value = value.checked_add(u64::from(b & 0x7f).checked_shl(shift)?)?;
        if b & 0x80 == 0 {
            return (value < 1 << 32).then_some((value, at));
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// Where an HPACK string literal lies in a block, and whether it is Huffman-coded (RFC 7541,
/// 5.2); decoded only when asked.
struct Literal {
    huffman: bool,
    start: usize,
    end: usize,
}

impl Literal {
    /// Its encoded length.
    fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether it spells `want` (decoded only when it is short enough to).
    fn is(&self, block: &[u8], want: &[u8]) -> bool {
        match self.huffman {
            false => &block[self.start..self.end] == want,
            true => self.len() <= want.len() && self.octets(block).is_some_and(|o| o == want),
        }
    }

    /// Its octets, Huffman-decoded if coded; `None` for a bad code.
    fn octets(&self, block: &[u8]) -> Option<Vec<u8>> {
        let bytes = &block[self.start..self.end];
        if !self.huffman {
            return Some(bytes.to_vec());
        }
        thread_local! {
            static DECODER: std::cell::RefCell<HuffmanDecoder> = std::cell::RefCell::new(HuffmanDecoder::new());
        }
        DECODER.with(|d| d.borrow_mut().decode(bytes).ok())
    }
}

/// The string literal starting at `block[at]`, if the block holds all of it.
fn string(block: &[u8], at: usize) -> Option<Literal> {
    let huffman = *block.get(at)? & 0x80 != 0;
    let (len, start) = integer(block, at, 7)?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    block.get(start..end)?;
    Some(Literal { huffman, start, end })
}

/// A string literal without Huffman coding.
fn write_raw_string(out: &mut Vec<u8>, s: &[u8]) {
    // Writing into a Vec cannot fail.
    let _ = loona_hpack::encoder::encode_integer_into(s.len(), 7, 0, &mut *out);
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use loona_hpack::Decoder;
    use tokio::io::AsyncReadExt;

    /// A literal with incremental indexing of the static `:authority` name, value raw.
    fn authority_literal(value: &str) -> Vec<u8> {
        let mut out = vec![0x40 | AUTHORITY_INDEX as u8];
        write_raw_string(&mut out, value.as_bytes());
        out
    }

    fn headers_frame(block: &[u8], flags: u8, stream: u32) -> Vec<u8> {
        let mut out = Vec::new();
        FrameHead::write(&mut out, block.len(), HEADERS, flags, stream);
        out.extend_from_slice(block);
        out
    }

    /// Everything `input` becomes on its way through the repair (arriving in small pieces).
    async fn through(input: Vec<u8>) -> Vec<u8> {
        let (mut client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            client.write_all(&input).await.unwrap();
        });
        let mut out = Vec::new();
        AuthorityRepair::new(server).read_to_end(&mut out).await.unwrap();
        writer.await.unwrap();
        out
    }

    /// The header blocks of the HEADERS frames (with CONTINUATIONs) after the preface.
    fn blocks(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes = &bytes[PREFACE.len()..];
        let mut blocks = Vec::new();
        while let Some(head) = FrameHead::parse(bytes) {
            let payload = &bytes[FRAME_HEADER..FRAME_HEADER + head.len];
            match head.kind {
                HEADERS => blocks.push(payload.to_vec()),
                CONTINUATION => blocks.last_mut().unwrap().extend_from_slice(payload),
                _ => {}
            }
            bytes = &bytes[FRAME_HEADER + head.len..];
        }
        blocks
    }

    #[tokio::test]
    async fn a_url_authority_loses_its_scheme_and_indexed_references_follow() {
        let mut first = vec![0x82]; // :method GET
        first.extend(authority_literal("http://127.0.0.1:2379"));
        let second = vec![0x82, 0xbe]; // :method GET, dynamic entry 62: the authority
        let settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(&settings);
        input.extend(headers_frame(&first, END_HEADERS | END_STREAM, 1));
        input.extend(headers_frame(&second, END_HEADERS, 3));
        let out = through(input).await;
        assert_eq!(&out[PREFACE.len()..PREFACE.len() + 9], &settings, "other frames pass unchanged");
        let mut decoder = Decoder::new();
        for block in blocks(&out) {
            let fields = decoder.decode(&block).unwrap();
            assert_eq!(fields[1], (b":authority".to_vec(), b"127.0.0.1:2379".to_vec()));
        }
    }

    #[tokio::test]
    async fn valid_authorities_other_fields_and_http1_pass_unchanged() {
        let mut block = vec![0x82];
        block.extend(authority_literal("127.0.0.1:2379"));
        block.extend([0x00, 0x03, b'a', b':', b'b', 0x03, b'x', b'/', b'y']); // a literal "a:b: x/y"
        let mut input = PREFACE.to_vec();
        input.extend(headers_frame(&block, END_HEADERS, 1));
        assert_eq!(through(input.clone()).await, input);
        let http1 = b"GET /health HTTP/1.1\r\nHost: http://x\r\n\r\n".to_vec();
        assert_eq!(through(http1.clone()).await, http1);
    }

    #[tokio::test]
    async fn blocks_spread_over_continuations_padding_and_priority_are_repaired() {
        let mut block = vec![0x82];
        // A never-indexed literal with the name spelled out.
        block.extend([0x10, 0x0a]);
        block.extend_from_slice(b":authority");
        write_raw_string(&mut block, b"https://m1:2379/some/path");
        let (a, b) = block.split_at(5);
        let mut payload = vec![2]; // pad length
        payload.extend([0, 0, 0, 0, 16]); // priority
        payload.extend_from_slice(a);
        payload.extend([0, 0]); // padding
        let mut input = PREFACE.to_vec();
        FrameHead::write(&mut input, payload.len(), HEADERS, PADDED | PRIORITY | END_STREAM, 5);
        input.extend(payload);
        FrameHead::write(&mut input, b.len(), CONTINUATION, END_HEADERS, 5);
        input.extend_from_slice(b);
        let out = through(input).await;
        let head = FrameHead::parse(&out[PREFACE.len()..]).unwrap();
        assert_eq!((head.kind, head.flags, head.stream), (HEADERS, PRIORITY | END_STREAM | END_HEADERS, 5));
        let payload = &out[PREFACE.len() + FRAME_HEADER..];
        assert_eq!(&payload[..5], &[0, 0, 0, 0, 16], "the priority is kept");
        let fields = Decoder::new().decode(&payload[5..]).unwrap();
        assert_eq!(fields[1], (b":authority".to_vec(), b"m1:2379".to_vec()));
    }

    proptest::proptest! {
        /// Untrusted bytes: any block parses or is left alone, never a panic; any frame stream
        /// arrives whole, and unchanged unless it repaired something.
        #[test]
        fn any_bytes_pass_without_a_panic(block: Vec<u8>, frames: Vec<u8>) {
            let _ = repair_block(&block);
            let mut input = PREFACE.to_vec();
            input.extend(&frames);
            let out = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(through(input.clone()));
            let repaired = FrameHead::parse(&frames).is_some_and(|h| h.kind == HEADERS) && out != input;
            proptest::prop_assert!(out == input || repaired);
        }
    }

    #[tokio::test]
    async fn a_continuation_on_another_stream_is_left_for_hyper_to_refuse() {
        let block = authority_literal("http://127.0.0.1:2379");
        let (a, b) = block.split_at(3);
        let mut input = PREFACE.to_vec();
        input.extend(headers_frame(a, 0, 1));
        FrameHead::write(&mut input, b.len(), CONTINUATION, END_HEADERS, 3);
        input.extend_from_slice(b);
        assert_eq!(through(input.clone()).await, input);
    }

    #[test]
    fn malformed_blocks_are_left_for_hyper_to_refuse() {
        assert_eq!(repair_block(&[0x41]), None, "a literal cut short");
        assert_eq!(repair_block(&[0x41, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f]), None, "an absurd length");
        assert_eq!(repair_block(&[0x41, 0x85, 0xff, 0xff, 0xff, 0xff, 0xff]), None, "bad Huffman");
        let long = loona_hpack::encoder::encode_integer(1_000_000, 7);
        assert_eq!(integer(&long, 0, 7), Some((1_000_000, long.len())));
    }
}
