"""The floor of a command on deploytool's stack: the least any typer + pydantic + PyYAML + Jinja2 CLI does.

    .venv/bin/python benchmarks/stack_floor.py [--spec deploytool.yaml] ENV

One typer command with an argument and an option (typer 0.29 checks each value with a pydantic
TypeAdapter), one YAML file read with PyYAML's C loader, one strict pydantic model validating it, one
Jinja template rendered, one line printed. The benchmarks time it as a fresh process next to deploytool's
own commands: what sits above it is deploytool's work, not the stack's.

Why not `python -c "import pydantic, typer, jinja2, yaml"`: pydantic 2 and typer import lazily, so that
process loads neither pydantic's model machinery (BaseModel, schema generation, plugin discovery through
importlib.metadata, ~85 ms here) nor typer's parameter adapters, which every command of this stack pays.
The benchmarks print both floors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False)


@app.command()
def main(env: str, spec: Annotated[Path, typer.Option()] = Path("deploytool.yaml")) -> None:
    import jinja2
    import yaml
    from pydantic import BaseModel, ConfigDict

    class Spec(BaseModel):
        model_config = ConfigDict(extra="allow", strict=True)
        project: str

    data = yaml.load(spec.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    model = Spec.model_validate(data)
    typer.echo(jinja2.Environment().from_string("{{ project }}: {{ env }}").render(project=model.project, env=env))


if __name__ == "__main__":
    app()
