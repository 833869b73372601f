"""`xthink vet-train` as a Python API: fine-tune a perceiver on VET pairs with the transformers `Trainer`.

Why `Trainer` and a collator of our own rather than TRL's `SFTTrainer`: the one thing that must hold is that
training sees the prompt inference renders (tools/vet/collate.py renders it with the perceiver's own
function); the trainer then only has to run the loop, checkpoint, resume, log and scale out
(`accelerate launch` / `torchrun` / DeepSpeed all work through `TrainingArguments`). The paper's settings
are the defaults: all parameters, lr 1e-5 with 2e-6 for the vision tower (optimizer parameter groups),
1 epoch, cosine schedule, 3% warmup, bf16 on a GPU (float32 on CPU). `lora=True` trains LoRA adapters
through peft instead and merges them on save, so the output folder is always a plain model that loads
with `from_pretrained` and works as `--perceiver`.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.files.folders import claim_folder

TRAIN_RECORD = "vet_train.json"  # written first (the folder's marker) and again with the summary at the end
VISION_PARTS = ("vision_tower", "visual", "vision_model")  # LLaVA/InternVL, Qwen-VL, Idefics3/SmolVLM


@dataclass
class TrainConfig:
    data: Path
    base: str
    out: Path
    lora: bool = False
    epochs: float = 1.0
    max_steps: int = -1
    lr: float = 1e-5
    vision_lr: float = 2e-6
    batch_size: int = 1
    grad_accum: int = 1
    warmup: float = 0.03
    max_length: int | None = None
    save_steps: int = 500
    logging_steps: int = 10
    report_to: str = "none"
    device: str = "auto"
    gradient_checkpointing: bool = False
    lora_rank: int = 16
    seed: int = 0
    restart: bool = False
    deepspeed: str | None = None  # a DeepSpeed config file (ZeRO), handed to TrainingArguments


@dataclass
class TrainSummary:
    out: str
    steps: int
    resumed_from: str | None
    first_loss: float | None
    final_loss: float | None
    seconds: float
    losses: list[float] = field(default_factory=list)


class TrainError(ValueError):
    """Bad training input (data, base model, options); the message says what to pass."""


def is_vision_param(name: str) -> bool:
    return any(part in VISION_PARTS for part in name.split("."))


def param_groups(model, decay: set[str], lr: float, vision_lr: float, weight_decay: float) -> list[dict]:
    """Trainable parameters in up to four groups: vision tower or not, weight decay or not."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups.setdefault((is_vision_param(name), name in decay), []).append(param)
    return [{"params": params, "lr": vision_lr if vision else lr, "weight_decay": weight_decay if decays else 0.0}
            for (vision, decays), params in sorted(groups.items())]  # fmt: skip


def _trainer_class():
    from transformers import Trainer

    class VetTrainer(Trainer):
        """`Trainer` whose optimizer gives the vision tower its own learning rate (the paper's 2e-6)."""

        vision_lr: float = 2e-6

        def create_optimizer(self, model=None):
            if self.optimizer is None:
                model = self.model if model is None else model
                decay = set(self.get_decay_parameter_names(model))
                groups = param_groups(model, decay, self.args.learning_rate, self.vision_lr, self.args.weight_decay)
                cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
                self.optimizer = cls(groups, **kwargs)
            return self.optimizer

    return VetTrainer


def load_base(base: str):
    """Processor and model of the base perceiver, as the inference backend loads them (float32 weights:
    bf16 runs as mixed precision over them on a GPU)."""
    import torch

    from tools.backends.hf_perceiver import load_vlm

    return load_vlm(base, torch.float32, what="base")


def with_lora(model, rank: int):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear")
    return get_peft_model(model, config)


def training_args(config: TrainConfig, cuda: bool):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(config.out / "checkpoints"), num_train_epochs=config.epochs, max_steps=config.max_steps,
        learning_rate=config.lr, lr_scheduler_type="cosine", warmup_steps=config.warmup, weight_decay=0.0,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        bf16=cuda, use_cpu=not cuda, logging_steps=config.logging_steps, logging_first_step=True,
        save_steps=config.save_steps, save_total_limit=2, report_to=config.report_to, seed=config.seed,
        remove_unused_columns=False, dataloader_num_workers=0,
        **({_checkpointing_field(TrainingArguments): True} if config.gradient_checkpointing else {}),
        **({"deepspeed": config.deepspeed} if config.deepspeed else {}),
    )  # fmt: skip


def _checkpointing_field(args_class) -> str:
    """transformers 5.x renames `gradient_checkpointing` to `activation_checkpointing`; use what it has."""
    from dataclasses import fields

    names = {f.name for f in fields(args_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def latest_checkpoint(out: Path) -> str | None:
    """The newest complete checkpoint. A kill during a save leaves a `checkpoint-N` folder without its
    trainer state (written last): it is skipped, so the run resumes from the one before."""
    folder = out / "checkpoints"
    found = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else []:
        try:
            json.loads((path / "trainer_state.json").read_text())
            found.append((int(path.name.split("-")[1]), path))
        except (OSError, ValueError):
            continue
    return str(max(found)[1]) if found else None


def claim_output(config: TrainConfig) -> None:
    """OUT must be new, empty, or a folder this command trained into (it holds vet_train.json)."""
    claim_folder(config.out, "--out", "a vet-train output folder", marker=TRAIN_RECORD)


def mark_output(config: TrainConfig) -> None:
    """Create OUT's marker before anything else is written there, directly (not via a rename), by every rank:
    at any moment OUT is empty or holds it, so ranks never refuse each other. Rewritten with the summary."""
    config.out.mkdir(parents=True, exist_ok=True)
    try:
        with (config.out / TRAIN_RECORD).open("x") as handle:
            handle.write(json.dumps({"status": "training", "config": {k: str(v) for k, v in asdict(config).items()}}))
    except FileExistsError:
        pass


def run_training(config: TrainConfig) -> TrainSummary:
    """Train, resuming from the newest checkpoint in OUT/checkpoints if a run was cut short; save OUT."""
    import torch

    from tools.vet.collate import VetCollator
    from tools.vet.dataset import load_pairs

    claim_output(config)
    if config.restart and (config.out / "checkpoints").exists():
        shutil.rmtree(config.out / "checkpoints")
    dataset = load_pairs(config.data)
    cuda = config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available())
    processor, model = load_base(config.base)
    if config.lora:
        model = with_lora(model, config.lora_rank)
    mark_output(config)
    trainer = _trainer_class()(model=model, args=training_args(config, cuda), train_dataset=dataset,
                               data_collator=VetCollator(processor, config.max_length))  # fmt: skip
    trainer.vision_lr = config.vision_lr
    resume = latest_checkpoint(config.out)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume)
    seconds = time.perf_counter() - started
    save(trainer, processor, config)
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    summary = TrainSummary(str(config.out), trainer.state.global_step, resume, losses[0] if losses else None,
                           losses[-1] if losses else None, round(seconds, 3), losses)  # fmt: skip
    if trainer.is_world_process_zero():
        record = {"config": {k: str(v) for k, v in asdict(config).items()}, "summary": asdict(summary),
                  "log_history": trainer.state.log_history}  # fmt: skip
        (config.out / TRAIN_RECORD).write_text(json.dumps(record, indent=2))
    return summary


def save(trainer, processor, config: TrainConfig) -> None:
    """OUT holds a plain model (LoRA merged, the adapter also kept in OUT/adapter) and its processor."""
    if not config.lora:
        trainer.save_model(str(config.out))  # every process: gathers ZeRO-3 / FSDP shards
    elif trainer.is_world_process_zero():
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(config.out / "adapter")
        model.merge_and_unload().save_pretrained(config.out)
    if trainer.is_world_process_zero():
        processor.save_pretrained(config.out)
