"""Fin3R distillation into the pairwise backbones (DUSt3R, MASt3R) through the real trainer.

The method's recipe for pairwise models: the adapter on the encoder blocks `enc_blocks.{i}.attn.qkv`,
decoders and heads frozen, single-view distillation on the self-view head of the (I, I) pair.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_training_trainer import config, labelled, synthetic_frames

from fin3r_lib.model_options import ModelOptions
from fin3r_lib.models.loader import build_model, load_model
from fin3r_lib.training.data import single_view_sample
from fin3r_lib.training.student import FrozenCheck, build_student, count_trainable
from fin3r_lib.training.trainer import Trainer

PAIRWISE_TINY = ["dust3r-tiny", "mast3r-tiny"]


@pytest.mark.parametrize("name", ["dust3r-512-dpt", "dust3r-512-linear", "dust3r-224-linear", "mast3r-512"])
def test_full_size_pairwise_students_train_exactly_the_encoder_adapter(name: str) -> None:
    model = build_student(ModelOptions(name, "none", device="meta"), "adapter")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert count_trainable(model) == 24 * (8 * 1024 + 3 * 1024 * 8) == 786_432
    assert len(names) == 48 and all(n.startswith("enc_blocks.") and ".attn.qkv.lora_" in n for n in names)


@pytest.mark.parametrize("name", PAIRWISE_TINY)
def test_the_single_view_depth_is_the_self_view_head_of_the_pair_with_itself(name: str) -> None:
    model = load_model(ModelOptions(name, "none", device="cpu", seed=2))
    images = torch.rand(2, 1, 3, 48, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        pred = model(images)
        res1, _ = model.forward_pair(images[:, 0], images[:, 0])
    assert torch.equal(pred["depth"][:, 0], res1["pts3d"][..., 2])
    assert torch.equal(pred["depth_conf"][:, 0], res1["conf"])


@pytest.mark.parametrize("name", PAIRWISE_TINY)
def test_distillation_trains_the_encoder_adapter_only_and_the_file_reloads(name: str, tmp_path: Path) -> None:
    frames = synthetic_frames(2)
    cfg = config(tmp_path, model=name, steps=3, checkpoint_every=0, replay=[], replay_fraction=0.0)
    trainer = Trainer(cfg, [labelled(frames)])
    frozen = FrozenCheck(trainer.model)
    before = {n: p.detach().clone() for n, p in trainer.params.items()}
    result = trainer.run(progress=False)

    assert frozen.changed(trainer.model) == [] and result.frozen_checked == len(frozen.reference) > 200
    assert {n.split(".")[0] for n in frozen.reference} >= {"enc_blocks", "dec_blocks", "dec_blocks2"}
    moved = [n for n, p in trainer.params.items() if not torch.equal(p, before[n])]
    assert len(moved) == len(trainer.params) == 4  # lora_A and lora_B of the two tiny encoder blocks

    reloaded = load_model(ModelOptions(name, "none", device="cpu", seed=cfg.seed, adapter=result.files["last"]))
    strict = build_model(name, adapter=result.files["last"])  # random base: the adapter alone must load
    assert {n for n, p in strict.named_parameters() if ".lora_" in n} == set(trainer.params)
    sample = single_view_sample(trainer.model, frames[0], labelled(frames[:1])[0][1])
    with torch.no_grad():
        trained, loaded = trainer.model(sample.image[None, None]), reloaded(sample.image[None, None])
    assert torch.equal(trained["depth"], loaded["depth"])
