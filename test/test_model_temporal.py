"""Stage 8: memory of earlier frames."""

from __future__ import annotations

import torch
from pdn_tiny import random_inputs, tiny_model

from pdn_model.temporal import push_frame


def global_only_model() -> torch.nn.Module:
    """A tiny model without windows: every detection comes from the global head, the one the
    memory feeds (patch detections do not read the memory)."""
    model = tiny_model()
    model.set_patches((0, 0))
    return model


def test_frame_tokens_fed_back_as_memory_change_the_output():
    model = global_only_model()
    image, memory, valid, state = random_inputs(model)
    with torch.no_grad():
        first = model(image, memory, valid, state)
        memory2, valid2 = push_frame(memory, valid, first["frame_tokens"])
        again = model(image, memory, valid, state)
        with_memory = model(image, memory2, valid2, state)
    assert torch.equal(first["scores"], again["scores"])
    assert not torch.allclose(first["scores"], with_memory["scores"], atol=1e-5)


def test_invalid_memory_slots_are_inert():
    model = global_only_model()
    image, memory, valid, state = random_inputs(model)
    noise = torch.randn_like(memory) * 10.0
    with torch.no_grad():
        empty = model(image, memory, valid, state)
        junk = model(image, noise, valid, state)
        # Half valid: the invalid slots' content still does not matter.
        half = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
        mixed_a = noise.clone()
        mixed_b = noise.clone()
        mixed_b[:, 2:] = torch.randn_like(mixed_b[:, 2:])
        a = model(image, mixed_a, half, state)
        b = model(image, mixed_b, half, state)
    for key in ("boxes", "scores", "labels", "frame_tokens"):
        assert torch.equal(empty[key], junk[key]), key
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["scores"], empty["scores"])


def test_push_frame_puts_the_newest_first_and_drops_the_oldest():
    memory = torch.arange(4.0).reshape(1, 4, 1, 1).expand(1, 4, 2, 3).clone()
    valid = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    frame = torch.full((1, 2, 3), 9.0)
    memory, valid = push_frame(memory, valid, frame)
    assert memory[0, :, 0, 0].tolist() == [9.0, 0.0, 1.0, 2.0]
    assert valid.tolist() == [[1.0, 1.0, 1.0, 0.0]]
