use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tonic::{Code, Status};

use super::reader::Chunks;
use super::send::SendPart;
use super::*;
use crate::proto::v1::{BlobHeader, Chunk, Codec};

/// Deterministic bytes: compressible (`repeat`) or not.
fn data(len: usize, compressible: bool) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ len as u64;
    (0..len)
        .map(|i| {
            if compressible {
                b"steadfast blob test line\n"[i % 25]
            } else {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            }
        })
        .collect()
}

/// What a source puts on the wire.
async fn send(source: BlobSource) -> Result<(BlobHeader, Vec<Chunk>), std::io::Error> {
    let mut sending = source.start();
    let mut header = None;
    let mut chunks = Vec::new();
    while let Some(part) = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut sending), cx)
    })
    .await
    {
        match part? {
            SendPart::Header(h) => header = Some(h),
            SendPart::Chunk(c) => chunks.push(c),
        }
    }
    Ok((header.expect("a header"), chunks))
}

fn chunks_of(items: Vec<Result<Chunk, Status>>) -> Chunks {
    Box::pin(tokio_stream::iter(items))
}

/// The blob a receiver makes of `header` and `chunks`.
fn blob_of(header: BlobHeader, chunks: Vec<Chunk>, limits: BlobLimits) -> Result<Blob, Status> {
    Blob::new(
        header,
        chunks_of(chunks.into_iter().map(Ok).collect()),
        limits,
    )
}

/// Reads a blob to its end (or error).
async fn receive(
    header: BlobHeader,
    chunks: Vec<Chunk>,
    limits: BlobLimits,
) -> Result<Vec<u8>, Status> {
    let mut blob = blob_of(header, chunks, limits)?;
    let mut out = Vec::new();
    blob.read_to_end(&mut out).await.map_err(|e| status(&e))?;
    Ok(out)
}

/// Reads `blob` to its end (or error) through `AsyncBufRead`, without a copy.
async fn read_buffered(mut blob: Blob) -> Result<Vec<u8>, Status> {
    use tokio::io::AsyncBufReadExt;
    let mut out = Vec::new();
    loop {
        let piece = blob.fill_buf().await.map_err(|e| status(&e))?;
        if piece.is_empty() {
            return Ok(out);
        }
        // Take part of it only, to check that `consume` keeps the rest.
        let n = piece.len().min(100_000);
        out.extend_from_slice(&piece[..n]);
        blob.consume(n);
    }
}

#[tokio::test]
async fn a_blob_reads_whole_through_async_buf_read_and_fails_there_as_through_async_read() {
    for (compressible, codec) in [(true, BlobCodec::Zstd), (false, BlobCodec::None)] {
        let input = data(3 * BLOCK_BYTES + 7, compressible);
        let (header, chunks) = send(BlobSource::from(input.clone()).codec(codec))
            .await
            .expect("sent");
        let output = read_buffered(
            blob_of(header, chunks.clone(), BlobLimits::default()).expect("accepted"),
        )
        .await;
        assert!(output.expect("whole") == input, "{codec:?}");

        // The last chunk missing: an error, never a short blob.
        let mut truncated = chunks;
        truncated.pop();
        let error =
            read_buffered(blob_of(header, truncated, BlobLimits::default()).expect("accepted"))
                .await
                .expect_err("truncated");
        assert_eq!(error.code(), Code::DataLoss, "{codec:?}: {error:?}");
    }
}

/// The codec a blob's header names.
fn codec_of(header: &BlobHeader) -> Codec {
    Codec::try_from(header.codec).expect("a known codec")
}

#[tokio::test]
async fn round_trips_at_the_edges_of_chunks_and_blocks_with_every_codec() {
    let chunk = 1024;
    for codec in [BlobCodec::Auto, BlobCodec::Zstd, BlobCodec::None] {
        for compressible in [true, false] {
            for len in [
                0,
                1,
                chunk - 1,
                chunk,
                chunk + 1,
                BLOCK_BYTES + 1,
                3 * BLOCK_BYTES + 7,
            ] {
                let what = format!("{codec:?}, len {len}, compressible {compressible}");
                let input = data(len, compressible);
                let source = BlobSource::from(input.clone())
                    .chunk_size(chunk)
                    .codec(codec);
                let (header, chunks) = send(source).await.expect("sent");
                assert_eq!(header.size, Some(len as u64), "{what}");
                // Auto: zstd for what shrinks (not 0 or 1 byte, not random).
                let expected = match codec {
                    BlobCodec::Zstd => Codec::Zstd,
                    BlobCodec::None => Codec::None,
                    BlobCodec::Auto if compressible && len > 1 => Codec::Zstd,
                    BlobCodec::Auto => Codec::None,
                };
                assert_eq!(codec_of(&header), expected, "{what}");
                assert!(chunks.iter().all(|c| c.data.len() <= chunk), "{what}");
                assert!(chunks.last().expect("at least one chunk").last, "{what}");
                if expected == Codec::None {
                    let (last, rest) = chunks.split_last().expect("a chunk");
                    assert!(rest.iter().all(|c| !c.last && c.checksum.is_none()));
                    let checksum = twox_hash::XxHash3_64::oneshot(&input);
                    assert_eq!(last.checksum, Some(checksum), "{what}");
                    let wire: Vec<u8> = chunks.iter().flat_map(|c| c.data.to_vec()).collect();
                    assert!(wire == input, "{what}: raw chunks carry the bytes");
                }
                let mut blob = blob_of(header, chunks, BlobLimits::default()).expect("accepted");
                let received = match expected {
                    Codec::None => BlobCodec::None,
                    _ => BlobCodec::Zstd,
                };
                assert_eq!(blob.codec(), received, "{what}");
                let mut output = Vec::new();
                blob.read_to_end(&mut output)
                    .await
                    .unwrap_or_else(|error| panic!("{what}: {:?}", status(&error)));
                assert!(output == input, "{what}");
            }
        }
    }
}

#[tokio::test]
async fn an_empty_raw_blob_is_one_empty_last_chunk_with_its_checksum() {
    for codec in [BlobCodec::None, BlobCodec::Auto] {
        let (header, chunks) = send(BlobSource::from(Vec::new()).codec(codec))
            .await
            .expect("sent");
        assert_eq!(codec_of(&header), Codec::None, "{codec:?}");
        assert_eq!(header.size, Some(0));
        assert_eq!(chunks.len(), 1, "{codec:?}");
        assert!(chunks[0].data.is_empty() && chunks[0].last && chunks[0].offset == 0);
        assert_eq!(
            chunks[0].checksum,
            Some(twox_hash::XxHash3_64::oneshot(b""))
        );
        let output = receive(header, chunks.clone(), BlobLimits::default()).await;
        assert_eq!(output.expect("whole"), Vec::<u8>::new());

        let mut unchecked = chunks;
        unchecked[0].checksum = None;
        assert_eq!(code_of(header, unchecked).await.0, Code::DataLoss);
    }
}

#[tokio::test]
async fn auto_looks_at_the_first_block_only() {
    // Random, then text: sent as it is, whole.
    let mut input = data(BLOCK_BYTES, false);
    input.extend(data(2 * BLOCK_BYTES, true));
    let (header, chunks) = send(BlobSource::from(input.clone())).await.expect("sent");
    assert_eq!(codec_of(&header), Codec::None);
    let output = receive(header, chunks, BlobLimits::default()).await;
    assert!(output.expect("whole") == input);

    // Text, then random: zstd.
    let mut input = data(BLOCK_BYTES, true);
    input.extend(data(2 * BLOCK_BYTES, false));
    let (header, chunks) = send(BlobSource::from(input.clone())).await.expect("sent");
    assert_eq!(codec_of(&header), Codec::Zstd);
    let output = receive(header, chunks, BlobLimits::default()).await;
    assert!(output.expect("whole") == input);
}

#[tokio::test(start_paused = true)]
async fn auto_sends_a_slow_sources_header_after_auto_wait_with_zstd_and_loses_no_byte() {
    let (mut writer, reader) = tokio::io::duplex(1 << 20);
    // Some bytes now, far less than a block, and the rest much later.
    let early = data(1000, false);
    let late = data(3 * BLOCK_BYTES, false);
    tokio::io::AsyncWriteExt::write_all(&mut writer, &early)
        .await
        .expect("write");
    let mut sending = BlobSource::from_reader(reader).start();
    let started = tokio::time::Instant::now();
    let first = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut sending), cx)
    })
    .await;
    let Some(Ok(SendPart::Header(header))) = first else {
        panic!("the header first");
    };
    assert_eq!(
        started.elapsed(),
        AUTO_WAIT,
        "the header waited AUTO_WAIT, no more"
    );
    assert_eq!(codec_of(&header), Codec::Zstd, "no block to look at: zstd");
    tokio::io::AsyncWriteExt::write_all(&mut writer, &late)
        .await
        .expect("write");
    drop(writer);
    let mut chunks = Vec::new();
    while let Some(part) = std::future::poll_fn(|cx| {
        futures_core::Stream::poll_next(std::pin::Pin::new(&mut sending), cx)
    })
    .await
    {
        match part.expect("sent") {
            SendPart::Chunk(chunk) => chunks.push(chunk),
            SendPart::Header(_) => panic!("one header"),
        }
    }
    let output = receive(header, chunks, BlobLimits::default()).await;
    let mut input = early;
    input.extend(late);
    assert!(output.expect("whole") == input, "every byte, in order");
}

#[tokio::test]
async fn a_raw_blob_from_a_reader_round_trips_and_progress_counts_every_byte_once() {
    // Many blocks, so that the reader reads into blocks the sender gave back.
    let input = data(12 * BLOCK_BYTES + 5, false);
    for (codec, size) in [
        (BlobCodec::Auto, None),
        (BlobCodec::None, Some(input.len() as u64)),
    ] {
        let mut source = BlobSource::from_reader(std::io::Cursor::new(input.clone())).codec(codec);
        if let Some(size) = size {
            source = source.size(size);
        }
        let progress = source.progress();
        let (header, chunks) = send(source).await.expect("sent");
        assert_eq!(codec_of(&header), Codec::None, "{codec:?}");
        assert_eq!(header.size, size);
        assert_eq!(progress.bytes(), input.len() as u64);
        assert_eq!(progress.wire_bytes(), input.len() as u64);
        let mut blob = blob_of(header, chunks, BlobLimits::default()).expect("accepted");
        let received = blob.progress();
        let mut output = Vec::new();
        blob.read_to_end(&mut output).await.expect("whole");
        assert!(output == input, "{codec:?}");
        assert_eq!(received.bytes(), input.len() as u64);
        assert_eq!(received.wire_bytes(), input.len() as u64);
    }
}

#[tokio::test]
async fn compressible_data_forced_raw_goes_as_it_is() {
    let input = data(BLOCK_BYTES * 2, true);
    let source = BlobSource::from(input.clone()).codec(BlobCodec::None);
    let progress = source.progress();
    let (header, chunks) = send(source).await.expect("sent");
    assert_eq!(codec_of(&header), Codec::None);
    assert_eq!(progress.wire_bytes(), input.len() as u64);
    let output = receive(header, chunks, BlobLimits::default()).await;
    assert!(output.expect("whole") == input);
}

#[tokio::test]
async fn zstd_workers_make_the_same_kind_of_stream() {
    // Larger than a worker's job, so that several jobs make the frame.
    let len = 3 * super::WORKER_JOB_BYTES as usize + 11;
    for compressible in [true, false] {
        let input = data(len, compressible);
        let source = BlobSource::from(input.clone()).workers(2);
        let (header, chunks) = send(source).await.expect("sent");
        let output = receive(header, chunks, BlobLimits::default()).await;
        let output = output.unwrap_or_else(|status| panic!("{status:?}"));
        assert!(output == input, "compressible {compressible}");
    }
}

#[tokio::test]
async fn every_job_size_round_trips_and_zstds_bounds_apply() {
    let input = data(3 << 20, false)
        .iter()
        .map(|byte| b"abcdefgh"[usize::from(byte % 8)])
        .collect::<Vec<u8>>();
    let mut wires = Vec::new();
    // Last, 0: zstd's own choice.
    for job in [1, 512 << 10, super::WORKER_JOB_BYTES, 1 << 30, u32::MAX, 0] {
        let source = BlobSource::from(input.clone())
            .codec(BlobCodec::Zstd)
            .workers(1)
            .job_size(job);
        let described = format!("{source:?}");
        let (header, chunks) = send(source).await.expect("sent");
        wires.push(
            chunks
                .iter()
                .flat_map(|c| c.data.to_vec())
                .collect::<Vec<u8>>(),
        );
        let output = receive(header, chunks, BlobLimits::default()).await;
        assert!(output.expect("whole") == input, "{described}");
    }
    // Below zstd's smallest job counts as it, above the largest as that; the
    // size in between is used.
    assert!(wires[0] == wires[1], "1 byte is 512 KiB");
    assert!(wires[3] == wires[4], "u32::MAX is 1 GiB");
    assert!(
        wires[1] != wires[2],
        "the default jobs cut the frame elsewhere"
    );
}

#[tokio::test]
async fn the_table_log_sizes_zstds_tables_and_every_size_round_trips() {
    assert_eq!(default_table_log(3), Some(DEFAULT_TABLE_LOG));
    assert_eq!(default_table_log(0), Some(DEFAULT_TABLE_LOG));
    assert_eq!(default_table_log(1), None);
    assert_eq!(default_table_log(9), None);
    // Words drawn at random from a vocabulary too big for small tables: short
    // repeats far apart, found only through tables that remember them.
    let vocabulary = data(8 * 20_000, false);
    let picks = data(4 * 150_000, false);
    let input: Vec<u8> = picks
        .chunks(4)
        .flat_map(|pick| {
            let word = u32::from_le_bytes(pick.try_into().expect("4 bytes")) as usize % 20_000;
            vocabulary[word * 8..word * 8 + 8].to_vec()
        })
        .collect();
    let mut sizes = Vec::new();
    for source in [
        BlobSource::from(input.clone()),
        BlobSource::from(input.clone()).table_log(0),
        BlobSource::from(input.clone()).table_log(18),
    ] {
        let described = format!("{source:?}");
        let (header, chunks) = send(source.codec(BlobCodec::Zstd)).await.expect("sent");
        sizes.push(chunks.iter().map(|c| c.data.len()).sum::<usize>());
        let output = receive(header, chunks, BlobLimits::default()).await;
        assert!(output.expect("whole") == input, "{described}");
    }
    assert!(
        sizes[0] > sizes[1] && sizes[0] > sizes[2],
        "smaller tables find fewer of the repeats: {sizes:?}"
    );

    let error = send(BlobSource::from(input).codec(BlobCodec::Zstd).table_log(99))
        .await
        .expect_err("out of zstd's range");
    assert!(error.to_string().contains("table log 99"), "{error}");
}

#[tokio::test]
async fn a_reader_with_unknown_size_round_trips_and_progress_counts() {
    let input = data(700_000, true);
    let source = BlobSource::from_reader(std::io::Cursor::new(input.clone()));
    let progress = source.progress();
    let (header, chunks) = send(source).await.expect("sent");
    assert_eq!(header.size, None);
    assert_eq!(progress.bytes(), input.len() as u64);
    let wire: usize = chunks.iter().map(|c| c.data.len()).sum();
    assert_eq!(progress.wire_bytes(), wire as u64);
    assert!(
        wire < input.len() / 4,
        "compressible data compresses: {wire}"
    );
    let output = receive(header, chunks, BlobLimits::default())
        .await
        .expect("whole");
    assert_eq!(output, input);
}

#[tokio::test]
async fn a_file_round_trips_and_a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("input.bin");
    let input = data(300_000, false);
    std::fs::write(&path, &input).expect("written");
    let (header, chunks) = send(BlobSource::from_path(&path)).await.expect("sent");
    assert_eq!(header.size, Some(input.len() as u64));
    let mut blob = blob_of(header, chunks, BlobLimits::default()).expect("accepted");
    let out = dir.path().join("output.bin");
    assert_eq!(blob.progress().total(), Some(input.len() as u64));
    let _ = &mut blob;
    assert_eq!(
        blob.to_file(&out).await.expect("written"),
        input.len() as u64
    );
    assert_eq!(std::fs::read(&out).expect("read"), input);

    let error = send(BlobSource::from_path(dir.path().join("missing")))
        .await
        .expect_err("no file");
    assert!(error.to_string().contains("cannot open"), "{error}");
}

#[tokio::test]
async fn a_source_that_gives_other_than_its_declared_size_fails() {
    let source = BlobSource::from_reader(std::io::Cursor::new(vec![1u8; 100])).size(200);
    let error = send(source).await.expect_err("short");
    assert!(error.to_string().contains("declared 200"), "{error}");
}

/// Random bytes as one zstd frame (what Auto would send as they are).
async fn sample(len: usize) -> (BlobHeader, Vec<Chunk>) {
    let source = BlobSource::from(data(len, false)).chunk_size(1024);
    let (header, chunks) = send(source.codec(BlobCodec::Zstd)).await.expect("sent");
    assert_eq!(codec_of(&header), Codec::Zstd);
    (header, chunks)
}

/// Random bytes as they are (`CODEC_NONE`), in chunks of 1 KiB.
async fn raw_sample(len: usize) -> (BlobHeader, Vec<Chunk>) {
    let (header, chunks) = send(BlobSource::from(data(len, false)).chunk_size(1024))
        .await
        .expect("sent");
    assert_eq!(
        codec_of(&header),
        Codec::None,
        "Auto sends random bytes raw"
    );
    (header, chunks)
}

async fn code_of(header: BlobHeader, chunks: Vec<Chunk>) -> (Code, String) {
    let status = receive(header, chunks, BlobLimits::default())
        .await
        .expect_err("refused");
    (status.code(), status.message().to_owned())
}

#[tokio::test]
async fn corrupted_missing_reordered_and_truncated_chunks_are_data_loss() {
    let (header, chunks) = sample(10_000).await;
    assert!(chunks.len() >= 4);

    let mut corrupted = chunks.clone();
    let mut data = corrupted[1].data.to_vec();
    data[100] ^= 0xFF;
    corrupted[1].data = Bytes::from(data);
    assert_eq!(code_of(header, corrupted).await.0, Code::DataLoss);

    let mut missing = chunks.clone();
    missing.remove(2);
    let (code, message) = code_of(header, missing).await;
    assert_eq!(code, Code::DataLoss);
    assert!(message.contains("missing or out of order"), "{message}");

    let mut reordered = chunks.clone();
    reordered.swap(1, 2);
    assert_eq!(code_of(header, reordered).await.0, Code::DataLoss);

    let mut truncated = chunks.clone();
    truncated.pop();
    let (code, message) = code_of(header, truncated).await;
    assert_eq!(code, Code::DataLoss);
    assert!(message.contains("before its last chunk"), "{message}");

    let mut early_last = chunks.clone();
    early_last.truncate(2);
    early_last[1].last = true;
    assert_eq!(code_of(header, early_last).await.0, Code::DataLoss);
}

#[tokio::test]
async fn a_whole_blob_ends_only_with_its_stream() {
    let (header, chunks) = sample(10_000).await;
    let last = chunks.last().expect("a chunk");
    let extra = Chunk {
        data: Bytes::from_static(b"more"),
        offset: last.offset + last.data.len() as u64,
        last: true,
        checksum: None,
    };
    let mut after_last = chunks.clone();
    after_last.push(extra);
    let (code, message) = code_of(header, after_last).await;
    assert_eq!(code, Code::DataLoss);
    assert!(message.contains("after the blob's last chunk"), "{message}");

    // A status after the last chunk (a download's trailers) is the read's result.
    let mut items: Vec<Result<Chunk, Status>> = chunks.into_iter().map(Ok).collect();
    items.push(Err(Status::aborted("the server failed after the blob")));
    let mut blob = Blob::new(header, chunks_of(items), BlobLimits::default()).expect("header");
    let mut out = Vec::new();
    let error = blob.read_to_end(&mut out).await.expect_err("the status");
    assert_eq!(status(&error).code(), Code::Aborted);
}

#[tokio::test]
async fn a_wrong_declared_size_and_a_bad_checksum_are_data_loss() {
    let (mut header, chunks) = sample(5_000).await;
    header.size = Some(5_001);
    let (code, message) = code_of(header, chunks.clone()).await;
    assert_eq!(code, Code::DataLoss);
    assert!(message.contains("declared 5001"), "{message}");

    // The frame's last 4 bytes are its checksum.
    let (header, mut chunks) = sample(5_000).await;
    let last = chunks.last_mut().expect("a chunk");
    let mut data = last.data.to_vec();
    let at = data.len() - 1;
    data[at] ^= 0x01;
    last.data = Bytes::from(data);
    let (code, message) = code_of(header, chunks).await;
    assert_eq!(code, Code::DataLoss);
    assert!(message.contains("checksum"), "{message}");
}

#[tokio::test]
async fn a_frame_without_checksum_is_refused() {
    let input = data(1000, true);
    let compressed = zstd::bulk::compress(&input, 3).expect("compressed");
    let header = BlobHeader {
        size: Some(1000),
        codec: crate::proto::v1::Codec::Zstd.into(),
    };
    let chunk = Chunk {
        data: Bytes::from(compressed),
        offset: 0,
        last: true,
        checksum: None,
    };
    let (code, message) = code_of(header, vec![chunk]).await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("no content checksum"), "{message}");
}

#[tokio::test]
async fn limits_refuse_declared_sizes_actual_sizes_and_big_chunks() {
    let (header, chunks) = sample(50_000).await;
    let limits = BlobLimits::new().max_size(10_000);
    let error = Blob::new(header, chunks_of(vec![]), limits).expect_err("declared too big");
    assert_eq!(error.code(), Code::ResourceExhausted);

    // Undeclared: refused at the limit.
    let mut undeclared = header;
    undeclared.size = None;
    let error = receive(undeclared, chunks.clone(), limits)
        .await
        .expect_err("too big");
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");

    let error = receive(header, chunks, BlobLimits::new().max_chunk(512))
        .await
        .expect_err("chunk");
    assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
}

/// A zstd frame (with the checksum flag) of `blocks` RLE blocks of 128 KiB of
/// zeros, never ended: 4 bytes per 128 KiB.
pub(crate) fn bomb(blocks: usize) -> Vec<u8> {
    let mut frame = 0xFD2F_B528_u32.to_le_bytes().to_vec();
    frame.push(0b0000_0100); // checksum flag; no size, not single-segment
    frame.push(7 << 3); // window 2^(10+7) = 128 KiB
    let block: u32 = ((128 * 1024) << 3) | (1 << 1); // RLE, not last
    for _ in 0..blocks {
        frame.extend_from_slice(&block.to_le_bytes()[..3]);
        frame.push(0);
    }
    frame
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_at_the_limit() {
    // 1 GiB of zeros in 32 KiB.
    let bomb = bomb(8192);
    let chunks: Vec<Chunk> = bomb
        .chunks(16 * 1024)
        .scan(0u64, |offset, data| {
            let chunk = Chunk {
                data: Bytes::copy_from_slice(data),
                offset: *offset,
                last: false,
                checksum: None,
            };
            *offset += data.len() as u64;
            Some(chunk)
        })
        .collect();
    let header = BlobHeader {
        size: None,
        codec: crate::proto::v1::Codec::Zstd.into(),
    };
    let limits = BlobLimits::new().max_size(64 << 20);
    let mut blob = blob_of(header, chunks, limits).expect("accepted");
    let mut sink = tokio::io::sink();
    let error = tokio::io::copy(&mut blob, &mut sink)
        .await
        .expect_err("refused");
    let status = status(&error);
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // Refused right at the limit, not after the whole bomb.
    assert!(
        blob.progress().bytes() <= (64 << 20) + 1,
        "{}",
        blob.progress().bytes()
    );
    // Every later read gives the same error.
    let mut buf = [0u8; 16];
    let again = blob.read(&mut buf).await.expect_err("still failed");
    assert_eq!(super::status(&again).code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn an_error_from_the_peer_ends_the_read_with_that_status() {
    let (header, chunks) = sample(10_000).await;
    let mut items: Vec<Result<Chunk, Status>> = chunks.into_iter().take(2).map(Ok).collect();
    items.push(Err(Status::cancelled("client went away")));
    let mut blob = Blob::new(header, chunks_of(items), BlobLimits::default()).expect("accepted");
    let mut out = Vec::new();
    let error = blob.read_to_end(&mut out).await.expect_err("cancelled");
    assert_eq!(status(&error).code(), Code::Cancelled);
}

#[tokio::test]
async fn to_bytes_honours_its_limit() {
    let (header, chunks) = sample(10_000).await;
    let blob = blob_of(header, chunks.clone(), BlobLimits::default()).expect("accepted");
    assert_eq!(
        blob.to_bytes(9_999).await.expect_err("over").code(),
        Code::ResourceExhausted
    );
    let blob = blob_of(header, chunks, BlobLimits::default()).expect("accepted");
    assert_eq!(blob.to_bytes(10_000).await.expect("fits").len(), 10_000);
}

/// A way to break a raw blob (10 chunks of 1 KiB), and the status it must get.
struct RawFault {
    what: &'static str,
    code: Code,
    /// Part of the status's message.
    says: &'static str,
    limits: fn() -> BlobLimits,
    apply: fn(&mut BlobHeader, &mut Vec<Chunk>),
}

const RAW_FAULTS: &[RawFault] = &[
    RawFault {
        what: "a wrong checksum",
        code: Code::DataLoss,
        says: "checksum does not match",
        limits: BlobLimits::new,
        apply: |_, chunks| {
            let last = chunks.last_mut().expect("a chunk");
            last.checksum = last.checksum.map(|sum| sum ^ 1);
        },
    },
    RawFault {
        what: "a flipped byte (only the checksum sees it)",
        code: Code::DataLoss,
        says: "checksum does not match",
        limits: BlobLimits::new,
        apply: |_, chunks| {
            let mut data = chunks[3].data.to_vec();
            data[10] ^= 0x5a;
            chunks[3].data = Bytes::from(data);
        },
    },
    RawFault {
        what: "no checksum",
        code: Code::DataLoss,
        says: "no checksum",
        limits: BlobLimits::new,
        apply: |_, chunks| chunks.last_mut().expect("a chunk").checksum = None,
    },
    RawFault {
        what: "a declared size one byte too large",
        code: Code::DataLoss,
        says: "declared 10241 bytes but carried 10240",
        limits: BlobLimits::new,
        apply: |header, _| header.size = Some(10_241),
    },
    RawFault {
        what: "a declared size one byte too small",
        code: Code::DataLoss,
        says: "declared 10239 bytes but carried 10240",
        limits: BlobLimits::new,
        apply: |header, _| header.size = Some(10_239),
    },
    RawFault {
        what: "a gap (a missing chunk)",
        code: Code::DataLoss,
        says: "missing or out of order",
        limits: BlobLimits::new,
        apply: |_, chunks| {
            chunks.remove(4);
        },
    },
    RawFault {
        what: "two chunks swapped",
        code: Code::DataLoss,
        says: "missing or out of order",
        limits: BlobLimits::new,
        apply: |_, chunks| chunks.swap(4, 5),
    },
    RawFault {
        what: "no last chunk",
        code: Code::DataLoss,
        says: "before its last chunk",
        limits: BlobLimits::new,
        apply: |_, chunks| {
            chunks.pop();
        },
    },
    RawFault {
        what: "an early last chunk (with the checksum of what came)",
        code: Code::DataLoss,
        says: "declared 10240 bytes but carried 3072",
        limits: BlobLimits::new,
        apply: |_, chunks| {
            chunks.truncate(3);
            let bytes: Vec<u8> = chunks.iter().flat_map(|c| c.data.to_vec()).collect();
            chunks[2].last = true;
            chunks[2].checksum = Some(twox_hash::XxHash3_64::oneshot(&bytes));
        },
    },
    RawFault {
        what: "a chunk after the last one",
        code: Code::DataLoss,
        says: "after the blob's last chunk",
        limits: BlobLimits::new,
        apply: |_, chunks| {
            let last = chunks.last().expect("a chunk").clone();
            chunks.push(Chunk {
                data: Bytes::from_static(b"more"),
                offset: last.offset + last.data.len() as u64,
                last: true,
                checksum: last.checksum,
            });
        },
    },
    RawFault {
        what: "a chunk over the limit",
        code: Code::ResourceExhausted,
        says: "over this receiver's limit of 512 bytes",
        limits: || BlobLimits::new().max_chunk(512),
        apply: |_, _| {},
    },
    RawFault {
        what: "more bytes than the limit, undeclared",
        code: Code::ResourceExhausted,
        says: "larger than the limit of 5000 bytes",
        limits: || BlobLimits::new().max_size(5_000),
        apply: |header, _| header.size = None,
    },
    RawFault {
        what: "more bytes than declared (under the limit): refused as they come",
        code: Code::DataLoss,
        says: "declared 4000 bytes but carried 4096 or more",
        limits: || BlobLimits::new().max_size(5_000),
        apply: |header, _| header.size = Some(4_000),
    },
    RawFault {
        what: "an unknown codec",
        code: Code::InvalidArgument,
        says: "codec 99 is not supported",
        limits: BlobLimits::new,
        apply: |header, _| header.codec = 99,
    },
    RawFault {
        what: "no codec (CODEC_UNSPECIFIED)",
        code: Code::InvalidArgument,
        says: "codec 0 is not supported",
        limits: BlobLimits::new,
        apply: |header, _| header.codec = 0,
    },
];

#[tokio::test]
async fn broken_raw_blobs_end_the_read_with_their_status() {
    let (good_header, good_chunks) = raw_sample(10_240).await;
    assert_eq!(good_chunks.len(), 10);
    let whole = receive(good_header, good_chunks.clone(), BlobLimits::default()).await;
    assert_eq!(whole.expect("the unbroken blob").len(), 10_240);
    for fault in RAW_FAULTS {
        let (mut header, mut chunks) = (good_header, good_chunks.clone());
        (fault.apply)(&mut header, &mut chunks);
        let status = receive(header, chunks, (fault.limits)())
            .await
            .expect_err(fault.what);
        assert_eq!(status.code(), fault.code, "{}: {status:?}", fault.what);
        assert!(
            status.message().contains(fault.says),
            "{}: {status:?}",
            fault.what
        );
    }
}

#[tokio::test]
async fn a_raw_blob_declared_over_the_limit_is_refused_before_any_chunk() {
    let (header, _) = raw_sample(10_240).await;
    // The chunks would fail the test if polled.
    let chunks: Chunks = Box::pin(futures_util_never());
    let error = Blob::new(header, chunks, BlobLimits::new().max_size(10_239))
        .expect_err("declared too big");
    assert_eq!(error.code(), Code::ResourceExhausted);
}

/// A stream that panics when polled.
fn futures_util_never() -> impl futures_core::Stream<Item = Result<Chunk, Status>> + Send {
    struct Never;
    impl futures_core::Stream for Never {
        fn poll_next(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            panic!("a chunk was read")
        }
        type Item = Result<Chunk, Status>;
    }
    Never
}

#[tokio::test]
async fn a_raw_blob_over_the_limit_gives_no_byte_past_it() {
    let (mut header, chunks) = raw_sample(10_240).await;
    header.size = None;
    let mut blob = Blob::new(
        header,
        chunks_of(chunks.into_iter().map(Ok).collect()),
        BlobLimits::new().max_size(5_000),
    )
    .expect("accepted");
    let mut out = Vec::new();
    let error = blob.read_to_end(&mut out).await.expect_err("over");
    assert_eq!(status(&error).code(), Code::ResourceExhausted);
    assert!(out.len() <= 5_000, "{}", out.len());
    // Every later read gives the same error, not an end of file.
    let mut buf = [0u8; 16];
    let again = blob.read(&mut buf).await.expect_err("still failed");
    assert_eq!(status(&again).code(), Code::ResourceExhausted);
}

/// Chunks that come some at once and some after a `Pending` (every third poll
/// is `Pending`, with a wake-up), as off a transport.
fn chunks_in_bursts(chunks: Vec<Chunk>) -> Chunks {
    struct Bursts {
        chunks: std::collections::VecDeque<Chunk>,
        polls: usize,
    }
    impl futures_core::Stream for Bursts {
        type Item = Result<Chunk, Status>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            self.polls += 1;
            if self.polls.is_multiple_of(3) {
                cx.waker().wake_by_ref();
                return std::task::Poll::Pending;
            }
            std::task::Poll::Ready(self.chunks.pop_front().map(Ok))
        }
    }
    Box::pin(Bursts {
        chunks: chunks.into(),
        polls: 0,
    })
}

#[tokio::test]
async fn a_zstd_stream_cut_anyhow_decodes_whole_whatever_comes_at_once() {
    // Highly compressible: one small chunk holds more than a decoding step's
    // output, so steps end on a full output with input left.
    for len in [3 * DECODE_STEP_BYTES + 7, 200_000] {
        let input = data(len, true);
        let (header, chunks) = send(BlobSource::from(input.clone()).codec(BlobCodec::Zstd))
            .await
            .expect("sent");
        let stream: Vec<u8> = chunks.iter().flat_map(|c| c.data.to_vec()).collect();
        // Recut: the frame header over several tiny chunks, empty chunks
        // between, and pieces of every size after.
        let sizes = [1usize, 2, 0, 1, 3, 0, 7, 1000, 1, 40_000, 0, 5];
        let mut recut = Vec::new();
        let mut offset = 0;
        let mut i = 0;
        while offset < stream.len() {
            let n = sizes[i % sizes.len()].min(stream.len() - offset);
            recut.push(Chunk {
                offset: offset as u64,
                data: Bytes::copy_from_slice(&stream[offset..offset + n]),
                last: offset + n == stream.len(),
                checksum: None,
            });
            offset += n;
            i += 1;
        }
        let all_at_once = receive(header, recut.clone(), BlobLimits::default())
            .await
            .expect("whole");
        assert!(all_at_once == input, "{len} bytes, all at once");
        let mut blob =
            Blob::new(header, chunks_in_bursts(recut), BlobLimits::default()).expect("accepted");
        let mut out = Vec::new();
        blob.read_to_end(&mut out).await.expect("whole");
        assert!(out == input, "{len} bytes, in bursts");
    }
}

/// Issue 21, item 4: every bound holds, whatever the peer sends.
mod bounds {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// `len` zeros as one zstd frame with its content checksum (what a
    /// steadfast sender makes of them), in chunks of 16 KiB.
    fn zstd_zeros(len: u64) -> Vec<Chunk> {
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).expect("encoder");
        encoder.include_checksum(true).expect("checksum flag");
        std::io::copy(
            &mut std::io::Read::take(std::io::repeat(0), len),
            &mut encoder,
        )
        .expect("compressed");
        let frame = encoder.finish().expect("frame");
        let pieces: Vec<&[u8]> = frame.chunks(16 * 1024).collect();
        let count = pieces.len();
        let mut offset = 0u64;
        pieces
            .into_iter()
            .enumerate()
            .map(|(i, data)| {
                let chunk = Chunk {
                    data: Bytes::copy_from_slice(data),
                    offset,
                    last: i + 1 == count,
                    checksum: None,
                };
                offset += data.len() as u64;
                chunk
            })
            .collect()
    }

    #[tokio::test]
    async fn a_zstd_blob_gives_no_byte_past_its_declared_size() {
        // Declares 1 MiB, carries 64 MiB (in a few KiB of zstd).
        let declared = 1u64 << 20;
        let header = BlobHeader {
            size: Some(declared),
            codec: Codec::Zstd.into(),
        };
        let mut blob = blob_of(header, zstd_zeros(64 << 20), BlobLimits::default())
            .expect("a declared size under the limit is accepted");
        let mut out = Vec::new();
        let error = blob.read_to_end(&mut out).await.expect_err("too long");
        let status = status(&error);
        assert_eq!(status.code(), Code::DataLoss, "{status:?}");
        assert!(
            status
                .message()
                .contains("declared 1048576 bytes but carried 1048577 or more"),
            "{status:?}"
        );
        assert!(
            out.len() as u64 <= declared,
            "the handler got {} bytes of a blob that declared {declared}",
            out.len()
        );
        // Decoding stopped there too, not at the end of the frame.
        assert!(
            blob.progress().bytes() <= declared + 1,
            "{}",
            blob.progress().bytes()
        );
        // Every later read gives the same error.
        let mut buf = [0u8; 16];
        let again = blob.read(&mut buf).await.expect_err("still failed");
        assert_eq!(super::status(&again).code(), Code::DataLoss);

        // What it declares, exactly: whole.
        let header = BlobHeader {
            size: Some(declared),
            ..header
        };
        let whole = receive(header, zstd_zeros(declared), BlobLimits::default())
            .await
            .expect("as declared");
        assert_eq!(whole.len() as u64, declared);
    }

    /// `chunks` with `empties` empty chunks put after the first one (at the
    /// offset where the second one starts); the count of chunks the receiver
    /// took off the stream goes to `taken`.
    fn with_empty_chunks(chunks: Vec<Chunk>, empties: usize, taken: Arc<AtomicUsize>) -> Chunks {
        let offset = chunks[0].data.len() as u64;
        let empty = Chunk {
            data: Bytes::new(),
            offset,
            last: false,
            checksum: None,
        };
        let mut rest = chunks.into_iter();
        let first = rest.next();
        let all = first
            .into_iter()
            .chain(std::iter::repeat_n(empty, empties))
            .chain(rest)
            .map(move |chunk| {
                taken.fetch_add(1, Ordering::Relaxed);
                Ok(chunk)
            });
        Box::pin(tokio_stream::iter(all))
    }

    #[tokio::test]
    async fn a_run_of_empty_chunks_is_refused_with_every_codec() {
        for (header, chunks) in [sample(10_000).await, raw_sample(10_000).await] {
            let codec = codec_of(&header);
            let taken = Arc::new(AtomicUsize::new(0));
            let blob = Blob::new(
                header,
                with_empty_chunks(chunks.clone(), 1_000_000, Arc::clone(&taken)),
                BlobLimits::default(),
            )
            .expect("accepted");
            let error = read_buffered(blob).await.expect_err("refused");
            assert_eq!(
                error.code(),
                Code::ResourceExhausted,
                "{codec:?}: {error:?}"
            );
            assert!(
                error.message().contains("empty chunks"),
                "{codec:?}: {error:?}"
            );
            let taken = taken.load(Ordering::Relaxed);
            assert!(
                taken <= MAX_EMPTY_CHUNKS + 2,
                "{codec:?}: {taken} chunks taken in"
            );

            // As many as the bound allows, in a row: whole.
            let blob = Blob::new(
                header,
                with_empty_chunks(chunks.clone(), MAX_EMPTY_CHUNKS, Arc::default()),
                BlobLimits::default(),
            )
            .expect("accepted");
            let whole = read_buffered(blob).await.expect("whole");
            assert_eq!(whole.len(), 10_000, "{codec:?}");
        }
    }

    #[tokio::test]
    async fn a_chunk_over_the_transports_message_limit_is_resource_exhausted() {
        let (header, chunks) = raw_sample(10_240).await;
        // What tonic's decoder answers to a message over its limit.
        let too_large = Status::out_of_range(
            "Error, decoded message length too large: found 5242901 bytes, the limit is: \
             4194315 bytes",
        );
        for (limits, says) in [
            (BlobLimits::default(), "limit of 1048576 bytes per chunk"),
            (
                BlobLimits::new().max_chunk(8 << 20),
                "raise `max_decoding_message_size`",
            ),
        ] {
            let items = vec![Ok(chunks[0].clone()), Err(too_large.clone())];
            let blob = Blob::new(header, chunks_of(items), limits).expect("accepted");
            let error = read_buffered(blob).await.expect_err("refused");
            assert_eq!(error.code(), Code::ResourceExhausted, "{error:?}");
            assert!(error.message().contains("5242901"), "{error:?}");
            assert!(error.message().contains(says), "{error:?}");
        }
        // Any other error from the transport is the blob's error as it is.
        let other = Status::out_of_range("something else");
        let items = vec![Ok(chunks[0].clone()), Err(other)];
        let blob = Blob::new(header, chunks_of(items), BlobLimits::default()).expect("accepted");
        let error = read_buffered(blob).await.expect_err("refused");
        assert_eq!(error.code(), Code::OutOfRange, "{error:?}");
    }
}

/// `Blob::to_file`: a regular file is replaced whole or not at all, and
/// nothing the call did not create is ever removed.
#[cfg(unix)]
mod to_file {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
    use std::os::unix::process::CommandExt as _;
    use std::path::Path;

    use super::*;

    /// How long a test waits for something that should happen at once.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

    /// A blob of `input`, random bytes sent as they are in chunks of 1 KiB.
    async fn blob_with(input: &[u8]) -> Blob {
        let source = BlobSource::from(input.to_vec()).chunk_size(1024);
        let (header, chunks) = send(source).await.expect("sent");
        blob_of(header, chunks, BlobLimits::default()).expect("accepted")
    }

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("listed")
            .map(|entry| {
                let entry = entry.expect("entry");
                entry.file_name().to_string_lossy().into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_download_replaces_a_file_whole_only_once_it_is_verified() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"the old content").expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        // Another user's file, where this process may say so (root).
        let _ = std::os::unix::fs::chown(&path, Some(65534), Some(65534));
        let owner = std::fs::metadata(&path).map(|meta| (meta.uid(), meta.gid()));
        // A handle on the old file: a replacement by rename leaves it as it was.
        let old = std::fs::File::open(&path).expect("opened");
        let old_inode = old.metadata().expect("stat").ino();

        let input = data(3 * BLOCK_BYTES + 17, false);
        let (header, chunks) = send(BlobSource::from(input.clone()).chunk_size(64 * 1024))
            .await
            .expect("sent");
        let (tx, rx) = tokio::sync::mpsc::channel(chunks.len());
        let blob = Blob::new(
            header,
            Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)),
            BlobLimits::default(),
        )
        .expect("accepted");
        let half = chunks.len() / 2;
        let mut chunks = chunks.into_iter();
        for chunk in chunks.by_ref().take(half) {
            tx.send(Ok(chunk)).await.expect("queued");
        }
        let writing = tokio::spawn({
            let path = path.clone();
            async move { blob.to_file(&path).await }
        });
        // Half the blob came: the path still holds the old file, whole.
        let target = path.clone();
        let dir_path = dir.path().to_owned();
        steadfast_tests::wait::until("a temporary file beside the target", PATIENCE, || {
            let names = names(&dir_path);
            async move { names.len() == 2 }
        })
        .await;
        assert_eq!(std::fs::read(&target).expect("read"), b"the old content");
        for chunk in chunks {
            tx.send(Ok(chunk)).await.expect("queued");
        }
        drop(tx);
        let written = writing.await.expect("joined").expect("written");
        assert_eq!(written, input.len() as u64);
        assert!(std::fs::read(&path).expect("read") == input);
        let new = std::fs::metadata(&path).expect("stat");
        assert_ne!(new.ino(), old_inode, "a new file, renamed over the old one");
        assert_eq!(new.permissions().mode() & 0o7777, 0o640, "permissions kept");
        assert_eq!(
            (new.uid(), new.gid()),
            owner.expect("stat"),
            "owner and group kept"
        );
        let mut kept = String::new();
        std::io::Read::read_to_string(&mut &old, &mut kept).expect("read");
        assert_eq!(kept, "the old content", "the old file was never written");
        assert_eq!(names(dir.path()), ["out.bin"], "no temporary file left");
    }

    #[tokio::test]
    async fn a_failed_download_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"the old content").expect("written");
        let (header, chunks) = raw_sample(3 * BLOCK_BYTES).await;
        // Two blocks' worth of chunks come, then the peer fails.
        let mut items: Vec<Result<Chunk, Status>> = chunks
            .into_iter()
            .take(2 * BLOCK_BYTES / 1024)
            .map(Ok)
            .collect();
        items.push(Err(Status::data_loss("the server lost its disk")));
        let blob = Blob::new(header, chunks_of(items), BlobLimits::default()).expect("accepted");
        let error = blob.to_file(&path).await.expect_err("failed");
        assert_eq!(error.code(), Code::DataLoss, "{error:?}");
        assert!(
            error.message().contains(&path.display().to_string())
                && error.message().contains("the server lost its disk"),
            "names the path and the reason: {error:?}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"the old content");
        assert_eq!(names(dir.path()), ["out.bin"], "no temporary file left");

        // Into a path where nothing was: nothing is left either.
        let (header, chunks) = raw_sample(3 * BLOCK_BYTES).await;
        let mut items: Vec<Result<Chunk, Status>> = chunks.into_iter().take(300).map(Ok).collect();
        items.push(Err(Status::data_loss("the server lost its disk")));
        let blob = Blob::new(header, chunks_of(items), BlobLimits::default()).expect("accepted");
        let new = dir.path().join("new.bin");
        let error = blob.to_file(&new).await.expect_err("failed");
        assert_eq!(error.code(), Code::DataLoss, "{error:?}");
        assert_eq!(names(dir.path()), ["out.bin"], "no temporary file left");
    }

    #[tokio::test]
    async fn a_symlink_to_dev_null_takes_every_byte_and_stays() {
        let dir = tempfile::tempdir().expect("temp dir");
        let link = dir.path().join("null");
        std::os::unix::fs::symlink("/dev/null", &link).expect("linked");
        let input = data(2 * BLOCK_BYTES + 3, false);
        let written = blob_with(&input).await.to_file(&link).await;
        assert_eq!(written.expect("written"), input.len() as u64);
        let meta = std::fs::symlink_metadata(&link).expect("the link is still there");
        assert!(meta.file_type().is_symlink());
        assert_eq!(
            std::fs::read_link(&link).expect("read"),
            Path::new("/dev/null")
        );
        assert!(
            std::fs::metadata("/dev/null")
                .expect("/dev/null is still there")
                .file_type()
                .is_char_device()
        );
        assert_eq!(names(dir.path()), ["null"], "no temporary file");
    }

    #[tokio::test]
    async fn a_symlink_to_a_file_stays_and_the_file_it_names_is_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("real.bin");
        std::fs::write(&file, b"old").expect("written");
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink("real.bin", &link).expect("linked");
        let input = data(5000, false);
        blob_with(&input)
            .await
            .to_file(&link)
            .await
            .expect("written");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("the link is still there")
                .file_type()
                .is_symlink()
        );
        assert!(std::fs::read(&file).expect("read") == input);
        assert_eq!(names(dir.path()), ["link.bin", "real.bin"]);
    }

    #[tokio::test]
    async fn a_fifo_with_a_reader_gets_every_byte_and_stays() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo: {made}");
        let reader = tokio::task::spawn_blocking({
            let fifo = fifo.clone();
            move || std::fs::read(fifo)
        });
        let input = data(3 * BLOCK_BYTES + 1, false);
        let written = tokio::time::timeout(PATIENCE, blob_with(&input).await.to_file(&fifo))
            .await
            .expect("in time");
        assert_eq!(written.expect("written"), input.len() as u64);
        let read = reader.await.expect("joined").expect("read");
        assert!(read == input, "every byte through the FIFO");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .expect("the FIFO is still there")
                .file_type()
                .is_fifo()
        );
    }

    /// The scenario of [`a_read_only_file_is_refused_and_left_as_it_was`].
    async fn read_only_file_scenario() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.bin");
        std::fs::write(&path, b"the old content").expect("written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        let error = blob_with(&data(5000, false))
            .await
            .to_file(&path)
            .await
            .expect_err("refused");
        assert_eq!(error.code(), Code::PermissionDenied, "{error:?}");
        assert!(
            error.message().contains(&path.display().to_string()),
            "names the path: {error:?}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"the old content");
        assert_eq!(names(dir.path()), ["out.bin"], "no temporary file");

        // A file it may write in a directory it may not: no temporary file can
        // go beside it, so it is refused too (not written in place).
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).expect("made");
        let path = locked.join("out.bin");
        std::fs::write(&path, b"the old content").expect("written");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
        let error = blob_with(&data(5000, false))
            .await
            .to_file(&path)
            .await
            .expect_err("refused");
        assert_eq!(error.code(), Code::PermissionDenied, "{error:?}");
        assert!(
            error.message().contains(&path.display().to_string())
                && error.message().contains("temporary file"),
            "says why: {error:?}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"the old content");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(names(&locked), ["out.bin"], "no temporary file");
    }

    /// Set in the environment of a test run again as an unprivileged user.
    const UNPRIVILEGED: &str = "STEADFAST_TEST_UNPRIVILEGED";

    #[tokio::test]
    async fn a_read_only_file_is_refused_and_left_as_it_was() {
        // Root (or a process with CAP_DAC_OVERRIDE) may write a read-only
        // file: then this test runs again as `nobody`.
        let probe = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::set_permissions(probe.path(), std::fs::Permissions::from_mode(0o444))
            .expect("chmod");
        let privileged = std::fs::OpenOptions::new()
            .write(true)
            .open(probe.path())
            .is_ok();
        if !privileged {
            return read_only_file_scenario().await;
        }
        assert!(
            std::env::var_os(UNPRIVILEGED).is_none(),
            "still privileged after dropping to uid 65534"
        );
        // A copy of this test binary that `nobody` may run, wherever the
        // build is (under /root, say).
        let bin = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let exe = bin.path().join("steadfast-tests");
        std::fs::copy(std::env::current_exe().expect("this test"), &exe).expect("copied");
        let test = "blob::tests::to_file::a_read_only_file_is_refused_and_left_as_it_was";
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let output = loop {
            let mut command = std::process::Command::new(&exe);
            command
                .args([test, "--exact", "--nocapture", "--test-threads=1"])
                .env(UNPRIVILEGED, "1")
                .env("TMPDIR", "/tmp")
                .uid(65534)
                .gid(65534);
            // std's Command off the runtime's thread: keeps tokio's `process`
            // out of steadfast's dependency tree, dev-dependencies included.
            let run = tokio::task::spawn_blocking(move || command.output())
                .await
                .expect("the child's wait does not panic");
            match run {
                // A process another test forked may hold the copy open for a
                // moment (until its exec).
                Err(error)
                    if error.kind() == std::io::ErrorKind::ExecutableFileBusy
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                run => break run.expect("the test runs as uid 65534"),
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "as uid 65534: {}\n{stdout}\n{stderr}",
            output.status
        );
    }

    #[tokio::test]
    async fn a_directory_or_a_missing_directory_is_refused_and_nothing_is_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("made");
        let error = blob_with(b"x")
            .await
            .to_file(&sub)
            .await
            .expect_err("a directory");
        assert!(
            error.message().contains(&sub.display().to_string()),
            "{error:?}"
        );
        assert!(sub.is_dir());
        let missing = dir.path().join("missing").join("out.bin");
        let error = blob_with(b"x")
            .await
            .to_file(&missing)
            .await
            .expect_err("no directory");
        assert_eq!(error.code(), Code::NotFound, "{error:?}");
        assert!(
            error.message().contains(&missing.display().to_string()),
            "{error:?}"
        );
        assert_eq!(names(dir.path()), ["sub"]);
    }
}

/// Live sources (pipes, logs being written, `/proc`): their bytes flow as they
/// come, and only a regular file's size is declared.
#[cfg(unix)]
mod live {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use futures_core::Stream;
    use tokio::io::AsyncWriteExt;

    use super::send::Sending;
    use super::*;

    /// How long a test waits for something that should happen at once.
    const PATIENCE: Duration = Duration::from_secs(20);

    /// The chunks a sender puts out after its header, as a receiver gets them.
    struct ChunksOf(Sending);

    impl Stream for ChunksOf {
        type Item = Result<Chunk, Status>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            Pin::new(&mut self.0).poll_next(cx).map(|part| {
                part.map(|part| match part {
                    Ok(SendPart::Chunk(chunk)) => Ok(chunk),
                    Ok(SendPart::Header(_)) => Err(Status::internal("a second header")),
                    Err(error) => Err(status(&error)),
                })
            })
        }
    }

    /// A receiver's blob of what `source` sends, as it is sent.
    async fn live_blob(source: BlobSource) -> Blob {
        let mut sending = source.start();
        let first = std::future::poll_fn(|cx| Pin::new(&mut sending).poll_next(cx)).await;
        let Some(Ok(SendPart::Header(header))) = first else {
            panic!("the header first");
        };
        Blob::new(header, Box::pin(ChunksOf(sending)), BlobLimits::default()).expect("accepted")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_sources_bytes_reach_the_receiver_within_a_second_with_every_codec() {
        // A log written at about 20 KB/s: a line every 5 ms, until told to
        // stop (long after the 1 s a receiver waits here: a sender that holds
        // bytes for a block, or for zstd's 128 KiB, shows nothing by then).
        let line = b"2026-12-07T10:00:00Z a steadfast log line, 100 bytes long or so .......................\n";
        let cases = [BlobCodec::None, BlobCodec::Zstd, BlobCodec::Auto]
            .into_iter()
            .flat_map(|codec| [(codec, DEFAULT_CHUNK_BYTES, 0), (codec, 1024, 0)])
            .chain([(BlobCodec::Zstd, DEFAULT_CHUNK_BYTES, 1)]);
        for (codec, chunk, workers) in cases {
            let what = format!("{codec:?}, chunks of {chunk}, {workers} workers");
            let (mut writer, reader) = tokio::io::duplex(1 << 20);
            let source = BlobSource::from_reader(reader)
                .codec(codec)
                .chunk_size(chunk)
                .workers(workers);
            let mut blob = live_blob(source).await;
            let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
            let writing = tokio::spawn(async move {
                let mut written = Vec::new();
                // At most 20 s of lines.
                for _ in 0..4000 {
                    if stopped.try_recv().is_ok() || writer.write_all(line).await.is_err() {
                        break;
                    }
                    written.extend_from_slice(line);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                written
            });
            let started = tokio::time::Instant::now();
            // The first lines, then more: the bytes keep flowing.
            let mut seen = Vec::new();
            for _ in 0..3 {
                let mut lines = vec![0; 4 * line.len()];
                tokio::time::timeout(Duration::from_secs(1), blob.read_exact(&mut lines))
                    .await
                    .unwrap_or_else(|_| panic!("{what}: nothing within 1 s"))
                    .expect("read");
                seen.extend(lines);
            }
            let waited = started.elapsed();
            stop.send(()).expect("the writer is writing");
            assert!(
                seen.chunks(line.len()).all(|piece| piece == line),
                "{what}: the lines as written"
            );
            // The rest, whole and verified, once the writer is done.
            let mut rest = Vec::new();
            tokio::time::timeout(PATIENCE, blob.read_to_end(&mut rest))
                .await
                .expect("in time")
                .expect("whole");
            seen.extend(rest);
            let written = writing.await.expect("joined");
            assert!(seen == written, "{what}: every byte");
            eprintln!("{what}: twelve lines after {waited:?}");
        }
    }

    #[tokio::test]
    async fn a_source_that_never_waits_is_sent_in_full_chunks_as_before() {
        // A reader that is always ready: the linger never starts.
        for (codec, compressible) in [(BlobCodec::None, false), (BlobCodec::Zstd, true)] {
            let input = data(40 * BLOCK_BYTES, compressible);
            let source = BlobSource::from_reader(std::io::Cursor::new(input.clone()))
                .codec(codec)
                .chunk_size(16 * 1024);
            let (header, chunks) = send(source).await.expect("sent");
            let (last, full) = chunks.split_last().expect("chunks");
            assert!(
                full.iter().all(|chunk| chunk.data.len() == 16 * 1024),
                "{codec:?}: every chunk but the last is full"
            );
            assert!(last.last && !last.data.is_empty(), "{codec:?}");
            let output = receive(header, chunks, BlobLimits::default()).await;
            assert!(output.expect("whole") == input, "{codec:?}");
        }
    }

    #[tokio::test]
    async fn a_fifo_is_streamed_with_no_declared_size() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success(), "mkfifo: {made}");
        let input = data(2 * BLOCK_BYTES + 77, true);
        let writer = tokio::task::spawn_blocking({
            let (fifo, input) = (fifo.clone(), input.clone());
            move || std::fs::write(fifo, input)
        });
        let (header, chunks) = tokio::time::timeout(PATIENCE, send(BlobSource::from_path(&fifo)))
            .await
            .expect("in time")
            .expect("sent");
        writer.await.expect("joined").expect("written");
        assert_eq!(header.size, None, "a FIFO has no size to declare");
        let output = receive(header, chunks, BlobLimits::default()).await;
        assert!(output.expect("whole") == input);
    }

    #[tokio::test]
    async fn a_proc_file_is_streamed_whole_with_no_declared_size() {
        // Sizes 0 in its metadata, and has more.
        let (header, chunks) = send(BlobSource::from_path("/proc/self/status"))
            .await
            .expect("sent");
        assert_eq!(header.size, None, "/proc's sizes are not the files'");
        let output = receive(header, chunks, BlobLimits::default())
            .await
            .expect("whole");
        let keys = |text: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(text)
                .lines()
                .map(|line| line.split(':').next().unwrap_or_default().to_owned())
                .collect()
        };
        let expected = std::fs::read("/proc/self/status").expect("read");
        assert!(output.ends_with(b"\n"), "whole");
        assert_eq!(keys(&output), keys(&expected), "every line");
    }

    #[tokio::test]
    async fn a_file_that_shrinks_while_it_is_read_is_reported_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("log");
        let size = 32u64 << 20;
        std::fs::write(&path, data(size as usize, false)).expect("written");
        let mut sending = BlobSource::from_path(&path).codec(BlobCodec::None).start();
        let first = std::future::poll_fn(|cx| Pin::new(&mut sending).poll_next(cx)).await;
        let Some(Ok(SendPart::Header(header))) = first else {
            panic!("the header first");
        };
        assert_eq!(header.size, Some(size));
        // The sender reads a few blocks ahead of its queue, not 32 MiB.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_len(1 << 20))
            .expect("truncated");
        let error = loop {
            match std::future::poll_fn(|cx| Pin::new(&mut sending).poll_next(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(error)) => break error,
                None => panic!("a blob shorter than declared was sent as whole"),
            }
        };
        let message = error.to_string();
        assert!(
            message.contains(&format!(" bytes, declared {size}")) && !message.contains("or more"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_reader_that_gives_more_or_fewer_bytes_than_declared_is_reported_so() {
        let error = send(BlobSource::from(vec![7u8; 1000]).size(999))
            .await
            .expect_err("more");
        assert!(
            error
                .to_string()
                .contains("gave 1000 bytes or more, but declared 999"),
            "{error}"
        );
        let error = send(BlobSource::from_reader(&b"0123456789"[..]).size(11))
            .await
            .expect_err("fewer");
        assert!(
            error.to_string().contains("gave 10 bytes, declared 11"),
            "{error}"
        );
    }
}
