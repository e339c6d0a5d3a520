"""A piece carried as its codes is scored exactly as the audio that encodes to those codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.signature.audio import load_audio
from lumina_audit.signature.codes import CodesError, codes_document, read_codes
from lumina_audit.signature.extract import signatures_of_audio, signatures_of_codes
from lumina_audit.signature.gradients import chunk_codes


def test_codes_of_audio_give_its_signatures_bit_for_bit(session: Any, tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    write_wav(path, render(SongSpec(seed=63000, seconds=23.0)), 32000, 16)  # chunks of 10, 10 and 3 s
    audio = load_audio(path, session.config)
    model = session.model
    by_audio = signatures_of_audio(audio, model, session.config, session.pins, "a", session.methods)
    samples = torch.from_numpy(audio.samples)
    chunks = [chunk_codes(model, samples[s:s + n]) for s, n in audio.chunks]
    assert [c.shape[-1] for c in chunks] == [500, 500, 150]
    # The codes written to a lumina-codes file, read back and cut as audio is cut.
    (tmp_path / "a.codes").write_bytes(codes_document(torch.cat(chunks, dim=-1)[0].numpy(), card=2048,
                                                      frame_rate=50, sample_rate=32000))
    piece = read_codes(tmp_path / "a.codes")
    assert piece.frames == 1150 and piece.sample_count == 1150 * 640
    cut = [torch.from_numpy(c.copy()).unsqueeze(0) for c in piece.chunks(500, 50)]
    by_codes = signatures_of_codes(cut, model, session.config, session.pins, "a", session.methods,
                                   file_sha256=audio.file_sha256, pcm_sha256=audio.pcm_sha256)
    for name, sig in by_audio.items():
        assert by_codes[name].bitwise_equal(sig), name


def test_a_codes_file_is_checked(tmp_path: Path) -> None:
    codes = np.arange(8, dtype=np.int64).reshape(4, 2)
    data = codes_document(codes, card=2048, frame_rate=50, sample_rate=32000)
    path = tmp_path / "p.codes"
    path.write_bytes(data)
    assert np.array_equal(read_codes(path).codes, codes)
    with pytest.raises(CodesError, match="differs from the pinned"):
        read_codes(path, "0" * 64)
    path.write_bytes(data.replace(b'"codes_sha256":"', b'"codes_sha256":"0'))
    with pytest.raises(CodesError):
        read_codes(path)
    with pytest.raises(CodesError, match=r"must lie in \[0, 2048\)"):
        codes_document(codes + 2047, card=2048, frame_rate=50, sample_rate=32000)
