"""Names that Kubernetes and container registries accept: DNS-1123 labels, image refs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetmind.core.errors import ConfigError, echo

DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

# The reference grammar of the distribution project (docker, containerd, buildah):
#   reference := name [":" tag] ["@" digest];  name := [domain "/"] path
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_DOMAIN_RE = re.compile(_DOMAIN)
_REMAINDER = re.compile(
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
NAME_MAX = 255


def check_dns_label(value: str, what: str) -> str:
    """``value`` if it is a DNS-1123 label (what a Service name must be), else ConfigError."""
    if len(value) > DNS_LABEL_MAX or not _DNS_LABEL.fullmatch(value):
        raise ConfigError(
            f"{what} {echo(value)} is not a DNS-1123 label: use at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return value


@dataclass(frozen=True)
class ImageRef:
    """A parsed container image reference."""

    domain: str | None
    """Registry host (and port), e.g. ``ghcr.io``; None for the default registry."""
    path: str
    """Repository path, e.g. ``org/fleetmind``."""
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        name = f"{self.domain}/{self.path}" if self.domain else self.path
        return (
            name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")
        )


def parse_image(reference: str) -> ImageRef:
    """Parse ``[registry[:port]/]path[:tag][@digest]``; ConfigError when it does not parse."""
    domain: str | None = None
    remainder = reference
    first, slash, rest = reference.partition("/")
    # docker's rule: the first component names a registry when it has '.' or ':' or is
    # 'localhost'; otherwise it is part of the path (docker.io/library/...)
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, remainder = first, rest
    match = _REMAINDER.fullmatch(remainder)
    if match is None or (domain is not None and not _DOMAIN_RE.fullmatch(domain)):
        raise ConfigError(
            f"image {echo(reference)} is not an image reference: write "
            "[REGISTRY[:PORT]/]PATH[:TAG][@sha256:DIGEST] with a lowercase PATH, "
            "e.g. ghcr.io/org/fleetmind:0.1.0"
        )
    path = match["path"]
    name = f"{domain}/{path}" if domain else path
    if len(name) > NAME_MAX:
        raise ConfigError(f"image name has {len(name)} characters; at most {NAME_MAX} are allowed")
    return ImageRef(domain, path, match["tag"], match["digest"])
