"""``gameday model``: make and check model directories that the simulator and vLLM load.

Heavy imports (numpy, safetensors, tokenizers, transformers) happen inside the commands,
so ``gameday --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    name="model",
    help="Model directories in the Hugging Face layout that both the simulator and vLLM load.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Help texts are single-line paragraphs: typer keeps a docstring's line breaks.
_MAKE_TINY_HELP = (
    "Write a tiny random Llama that 'gameday sim serve --model-dir DIR' and real vLLM both "
    "serve (e.g. on CPU: vllm serve DIR --max-model-len 512 --enforce-eager)."
    "\n\n"
    "Offline, in about a second, no torch: config.json (transformers' LlamaConfig: 2 layers, "
    "hidden 128, 4 heads of 32, vocabulary 2048), generation_config.json, the weights in "
    "bf16 with seeded random values (model.safetensors, or --shards N files with "
    "model.safetensors.index.json), a byte-level BPE tokenizer with a chat template, and a "
    "model card. 852,608 parameters, 1.7 MB."
    "\n\n"
    "To stage a model-loading failure, damage it: remove a shard (vLLM: 'Weight files "
    "referenced in index but missing'), truncate a file or overwrite its header length "
    "(safetensors 'Error while deserializing header'). Flipping bytes inside a tensor goes "
    "unnoticed: vLLM keeps no checksum."
)
_CHECK_HELP = (
    "Load a model directory as vLLM 0.32 would, without serving it: its config, its "
    "max_model_len, the weight files the index names and every safetensors header."
    "\n\n"
    "Prints a summary and exits 0, or prints the error line(s) vLLM would fail with and "
    "exits 1. Like vLLM, it cannot see bytes flipped inside a tensor."
)


@app.command("make-tiny", help=_MAKE_TINY_HELP)
def make_tiny_command(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="Directory to create; it must not exist yet, or be empty."
        ),
    ],
    shards: Annotated[
        int,
        typer.Option(
            help="Weight files to split the tensors over (1 to 8); above 1 they come with "
            "model.safetensors.index.json, so a missing-shard fault has a shard to take.",
        ),
    ] = 1,
    name: Annotated[
        str | None,
        typer.Option(
            help="The model's name on its model card (README.md). Default: DIR's name. "
            "Servers name it after its path unless told otherwise (--served-model-name)."
        ),
    ] = None,
    max_model_len: Annotated[
        int,
        typer.Option(
            help="The model's context length (max_position_embeddings); a server asked "
            "for more with --max-model-len refuses to start."
        ),
    ] = 512,
    seed: Annotated[
        int, typer.Option(help="Seed of the random weights: the same seed, the same bytes.")
    ] = 0,
) -> None:
    from gameday.cli.common import guarded, out
    from gameday.models.layout import weight_files
    from gameday.models.tiny import make_tiny

    path = guarded(
        lambda: make_tiny(
            directory, shards=shards, name=name, max_model_len=max_model_len, seed=seed
        )
    )
    files = weight_files(path)
    size = sum((path / f).stat().st_size for f in files)
    what = "1 weight file" if len(files) == 1 else f"{len(files)} weight files and an index"
    out.print(
        f"wrote a tiny Llama to {path}: {what}, {size / 1e6:.1f} MB of bf16 weights, "
        f"max_model_len {max_model_len}",
        markup=False,
    )


@app.command(help=_CHECK_HELP)
def check(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="The model directory.")],
    max_model_len: Annotated[
        int | None,
        typer.Option(help="Check it against this --max-model-len too. Default: the model's."),
    ] = None,
) -> None:
    import threading

    from gameday.cli.common import err, out
    from gameday.sim.logs import exception_line
    from gameday.sim.model import load_weights, read_model_dir, settle_max_model_len

    try:
        spec = read_model_dir(directory)
        length = settle_max_model_len(spec, max_model_len)
        weights = load_weights(spec, bandwidth=2**40, cancel=threading.Event())
    except Exception as error:  # every loader error is the finding, printed as vLLM prints it
        err.print(exception_line(error), markup=False)
        raise typer.Exit(1) from None
    assert weights is not None  # never cancelled
    count = len(weights.files)
    out.print(
        f"ok: {directory}: {spec.architecture}, {weights.tensors} tensors in {count} "
        f"weight file{'s' if count != 1 else ''} ({weights.nbytes / 1e6:.1f} MB), "
        f"max_model_len {length}",
        markup=False,
    )
