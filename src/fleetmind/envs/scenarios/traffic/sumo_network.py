"""SUMO network and route files: the bundled scenarios, checks, fixed-time plans."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

from fleetmind.core.errors import ConfigError, NotFoundError

SumoScenario = Literal["single", "grid2x2", "grid4x4"]

# Networks and routes shipped with sumo-rl, relative to its ``nets`` folder.
BUNDLED: dict[str, tuple[str, str]] = {
    "single": (
        "single-intersection/single-intersection.net.xml",
        "single-intersection/single-intersection.rou.xml",
    ),
    "grid2x2": ("2x2grid/2x2.net.xml", "2x2grid/2x2.rou.xml"),
    "grid4x4": ("4x4-Lucas/4x4.net.xml", "4x4-Lucas/4x4c1c2c1c2.rou.xml"),
}


def bundled_files(scenario: str) -> tuple[Path, Path]:
    """Net and route file of one of sumo-rl's bundled scenarios."""
    if scenario not in BUNDLED:
        raise ConfigError(f"unknown SUMO scenario {scenario!r}; choose one of {', '.join(BUNDLED)}")
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or spec.origin is None:
        raise NotFoundError("sumo-rl is not installed: pip install 'fleetmind[sumo]'")
    nets = Path(spec.origin).parent / "nets"
    net, route = BUNDLED[scenario]
    return nets / net, nets / route


def parse_xml(path: Path, kind: str, root_tag: str) -> ET.Element:
    """Parse a SUMO XML file; NotFoundError or ConfigError naming the file."""
    if not path.is_file():
        raise NotFoundError(f"SUMO {kind} file {str(path)!r} does not exist")
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"SUMO {kind} file {str(path)!r} does not parse: {exc}") from exc
    if root.tag != root_tag:
        raise ConfigError(
            f"SUMO {kind} file {str(path)!r} has root element <{root.tag}>, expected <{root_tag}>"
        )
    return root


def is_green_state(state: str) -> bool:
    """sumo-rl's rule for a green phase: no yellow, and not all red."""
    return "y" not in state and state.count("r") + state.count("s") != len(state)


def green_durations(net_root: ET.Element) -> dict[str, list[float]]:
    """Seconds of each green phase of every signal's first program in the network."""
    out: dict[str, list[float]] = {}
    for logic in net_root.iter("tlLogic"):
        tls = logic.get("id")
        if tls is None or tls in out:
            continue
        out[tls] = [
            float(phase.get("duration", "30"))
            for phase in logic.iter("phase")
            if is_green_state(phase.get("state", ""))
        ]
    return out


def check_files(net_file: Path, route_file: Path) -> dict[str, list[float]]:
    """Check both files exist and parse; return the fixed-time plan of the network."""
    net = parse_xml(net_file, "network", "net")
    parse_xml(route_file, "route", "routes")
    plans = green_durations(net)
    if not plans:
        raise ConfigError(f"SUMO network file {str(net_file)!r} has no traffic lights to control")
    return plans
