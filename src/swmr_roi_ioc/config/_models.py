"""pydantic models of ioc.yaml; every field's description feeds the JSON schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_PV_CHARS = re.compile(r"^[A-Za-z0-9_:\-.\[\]<>;{}]*$")
_ROI_NAME = re.compile(r"^[A-Za-z0-9_ .\-]{1,39}$")
_IOC_NAME = re.compile(r"^[a-z0-9]([a-z0-9\-]{0,61}[a-z0-9])?$")

#: The largest frame dimension any supported camera has; bounds ROI geometry.
MAX_PIXELS = 1 << 16


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StompConfig(_Model):
    """A STOMP broker that carries bluesky documents (blueapi's DataEvents)."""

    host: str = Field(default="localhost", min_length=1, description="Broker host.")
    port: int = Field(default=61613, ge=1, le=65535, description="Broker STOMP port.")
    topic: str = Field(
        default="public.worker.event",
        min_length=1,
        description="Topic the documents are published on (blueapi: public.worker.event).",
    )
    user: str | None = Field(default=None, description="Login; null: none.")
    password_env: str | None = Field(
        default=None,
        description=(
            "Name of the environment variable holding the password (the password "
            "itself never goes into this file)."
        ),
    )


class BlueskyConfig(_Model):
    """Follow bluesky runs: the run's documents name the file and its complete frames."""

    stomp: StompConfig | None = Field(
        default=None,
        description="Documents as blueapi DataEvents from a STOMP broker.",
    )
    zmq: str | None = Field(
        default=None,
        description="Or: 'host:port' of a bluesky 0MQ proxy's output (JSON serializer).",
        pattern=r"^[^:\s]+:[0-9]{1,5}$",
    )
    data_key: str | None = Field(
        default=None,
        description=(
            "data_key of the detector to follow; null: the first StreamResource of "
            "mimetype application/x-hdf5 whose frames are 2-D."
        ),
    )

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.stomp is None) == (self.zmq is None):
            raise ValueError("set exactly one of stomp or zmq")
        return self


class SourceConfig(_Model):
    """Where the frames come from."""

    file: str | None = Field(
        default=None,
        description=(
            "A fixed HDF5 file to follow (waits for it to appear). A relative path "
            "is taken relative to data_root."
        ),
    )
    plugin_prefix: str | None = Field(
        default=None,
        description=(
            "Follow the files this NDFileHDF5 plugin writes, e.g. "
            "'BL01C-DI-DCAM-01:HDF5:' (over Channel Access). Set file or this, not both."
        ),
    )
    dataset: str = Field(
        default="/entry/data/data",
        description="HDF5 path of the frames dataset, shape (..., H, W).",
    )
    keys: list[str] = Field(
        default_factory=list,
        description=(
            "Optional key datasets or groups: a frame is complete when every key "
            "is non-zero at its index. Empty: complete when the extent covers it."
        ),
    )
    finished: str | None = Field(
        default=None,
        description="Optional dataset whose non-zero value means the writer finished.",
    )
    timeout: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=5.0,
        description="Seconds with no new frame after which the acquisition is Finished.",
    )
    keys_lag: Literal["extent", "wait"] | None = Field(
        default=None,
        description=(
            "What to do while the keys lag the data's extent (areaDetector flushes its "
            "attribute datasets, NDArrayUniqueId among them, only every NDAttributeChunk "
            "frames): 'extent' follows the extent (written chunks) and uses the keys to "
            "confirm as they arrive; 'wait' takes a frame only once every key is set. "
            "null: 'extent' for areaDetector files (with /entry/instrument/NDAttributes), "
            "'wait' for others. StatusMessage_RBV says when and by how much they lag."
        ),
    )
    bluesky: BlueskyConfig | None = Field(
        default=None,
        description=(
            "Or: follow bluesky runs (StreamResource / StreamDatum documents over "
            "STOMP or 0MQ). Exclusive with file and plugin_prefix."
        ),
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [
            name
            for name, value in (
                ("file", self.file),
                ("plugin_prefix", self.plugin_prefix),
                ("bluesky", self.bluesky),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"set either file, plugin_prefix or bluesky, not more (got {' and '.join(given)})"
            )
        return self

    @field_validator("dataset", "finished")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must be an absolute HDF5 path (got {value!r})")
        return value


class ScanConfig(_Model):
    """Geometry of the 2-D scan the frames belong to (for the maps)."""

    shape: (
        tuple[
            Annotated[int, Field(ge=1, le=100_000)],
            Annotated[int, Field(ge=1, le=100_000)],
        ]
        | None
    ) = Field(
        default=None,
        description="Map geometry (rows, cols). None: maps of one row of time_series_length.",
    )
    snake: bool = Field(default=True, description="Odd rows run backwards (snake scan).")
    max_points: int = Field(
        default=65536,
        ge=1,
        le=4_000_000,
        description=(
            "Capacity of the map waveforms when shape is not set: the geometry then "
            "comes from the plugin's ExtraDimSize PVs or the file's extra dimensions, "
            "else one row."
        ),
    )

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.shape is not None and self.shape[0] * self.shape[1] > 4_000_000:
            raise ValueError("scan.shape has more than 4,000,000 points")
        return self


class RoiConfig(_Model):
    """One rectangular region, in NDPluginROIStat terms."""

    name: str = Field(
        description=("Label shown in P:n:Name: 1 to 39 letters, digits, spaces or '_.-'."),
        json_schema_extra={"pattern": _ROI_NAME.pattern},
    )
    x: int = Field(ge=0, le=MAX_PIXELS, description="MinX: first column of the region.")
    y: int = Field(ge=0, le=MAX_PIXELS, description="MinY: first row of the region.")
    width: int = Field(ge=1, le=MAX_PIXELS, description="SizeX: number of columns.")
    height: int = Field(ge=1, le=MAX_PIXELS, description="SizeY: number of rows.")
    background_width: int = Field(
        default=0,
        ge=0,
        le=MAX_PIXELS,
        description="BgdWidth: border inside the region whose mean is the background of Net.",
    )
    use: bool = Field(default=True, description="Compute this ROI (P:n:Use).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ROI_NAME.match(value):
            raise ValueError(
                f"a ROI name is 1 to 39 letters, digits, spaces or '_.-' (got {value!r})"
            )
        return value


class HistogramConfig(_Model):
    """Histogram of the latest frame (P:Histogram_RBV)."""

    bins: int = Field(default=256, ge=1, le=65536, description="Number of bins (HistSize).")
    min: float = Field(default=0.0, description="Lower edge of the first bin (HistMin).")
    max: float = Field(default=256.0, description="Upper edge of the last bin (HistMax).")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.max > self.min:
            raise ValueError(f"histogram max ({self.max}) must be greater than min ({self.min})")
        return self


class PublishConfig(_Model):
    """How often and how much is published."""

    rate_hz: float = Field(
        default=10.0,
        gt=0,
        le=100,
        description="Cap on monitor updates per PV per second.",
    )
    time_series_length: int = Field(
        default=2048,
        ge=1,
        le=1_000_000,
        description="Points in each time series waveform.",
    )
    histogram: HistogramConfig = Field(
        default_factory=HistogramConfig, description="Histogram of the latest frame."
    )
    image_max_size: int = Field(
        default=512,
        ge=8,
        le=4096,
        description="Live image binned to at most this per side.",
    )


class EngineConfig(_Model):
    """The worker processes that open, read and compute (the IOC process
    never touches HDF5)."""

    workers: Annotated[int, Field(ge=1, le=64)] | None = Field(
        default=None,
        description=(
            "Reader/compute worker processes, kept alive across acquisitions; "
            "null: the number of cores."
        ),
    )
    stall_timeout: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=30.0,
        description=(
            "Seconds a worker whose read does not return is given (a stuck file "
            "server) before it is killed and replaced; following then resumes."
        ),
    )


class NexusConfig(_Model):
    """Processed NeXus output per acquisition, written when it ends."""

    directory: str | None = Field(
        default=None, description="Output directory; null = beside the source file."
    )


class AccessConfig(_Model):
    """Who may write setpoints (CA and PVA). Empty lists: anyone."""

    write_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Client hosts allowed to write (host names as clients report them, short "
            "or fully qualified, or IP addresses). Empty: any host."
        ),
    )
    write_users: list[str] = Field(
        default_factory=list,
        description="Client user names allowed to write. Empty: any user.",
    )


class WebConfig(_Model):
    """The live page in a browser, served from the IOC's own process."""

    enabled: bool = Field(
        default=False,
        description="Serve the live page: maps, image with the ROIs, histogram, status.",
    )
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the page listens on; 0.0.0.0 for every interface.",
    )
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port of the page.")
    allow_edit: bool = Field(
        default=False,
        description=(
            "Let the page move and resize the ROIs and Reset, as CA puts would "
            "(access.write_hosts applies to the browser's address)."
        ),
    )


class IocConfig(_Model):
    """One instance of swmr-roi-ioc: the whole of ioc.yaml."""

    ioc_name: str = Field(
        description=(
            "Name of this IOC instance (epics-containers style): lower-case letters, "
            "digits and '-', starting and ending with a letter or digit, at most 63 "
            "characters (it names the Kubernetes objects)."
        ),
        json_schema_extra={"pattern": _IOC_NAME.pattern},
    )
    description: str = Field(default="", description="Free text shown in the screens.")
    prefix: str = Field(
        description="Every PV name starts with this; ends with ':' (areaDetector $(P)$(R)).",
        min_length=2,
        max_length=40,
    )
    data_root: str = Field(
        description=(
            "Only files under this directory are ever opened (symlinks resolved). "
            "The environment variable SWMR_ROI_DATA_ROOT overrides it."
        )
    )
    source: SourceConfig = Field(
        default_factory=SourceConfig, description="Where frames come from."
    )
    scan: ScanConfig = Field(default_factory=ScanConfig, description="Scan geometry for the maps.")
    rois: list[RoiConfig] = Field(
        default_factory=list,
        max_length=64,
        description="The regions of interest, P:1: .. P:N:.",
    )
    publish: PublishConfig = Field(default_factory=PublishConfig, description="Publishing limits.")
    pva: bool = Field(default=True, description="Mirror every PV over PVAccess (p4p).")
    engine: EngineConfig = Field(
        default_factory=EngineConfig, description="Reader/compute worker processes."
    )
    nexus: NexusConfig = Field(default_factory=NexusConfig, description="NeXus output.")
    access: AccessConfig = Field(
        default_factory=AccessConfig, description="Write access control by host and user."
    )
    web: WebConfig = Field(default_factory=WebConfig, description="The live page in a browser.")
    screens_dir: str | None = Field(
        default=None,
        description=(
            "Write the Phoebus screens (index.bob, ...) here at startup; "
            "/epics/opi in the container. null: do not write them."
        ),
    )

    @field_validator("ioc_name")
    @classmethod
    def _ioc_name(cls, value: str) -> str:
        if not _IOC_NAME.match(value):
            raise ValueError(
                "must be lower-case letters, digits and '-', start and end with a letter "
                f"or digit, at most 63 characters, e.g. 'bl01c-di-dcam-01-roi' (got {value!r})"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.endswith(":"):
            raise ValueError(f"must end with ':' (got {value!r})")
        if not _PV_CHARS.match(value):
            raise ValueError(f"{value!r} has characters not allowed in a PV name")
        return value

    @field_validator("data_root")
    @classmethod
    def _data_root(cls, value: str) -> str:
        if not value or not Path(value).is_absolute():
            raise ValueError(f"must be an absolute path (got {value!r})")
        return value

    @field_validator("rois")
    @classmethod
    def _unique_names(cls, value: list[RoiConfig]) -> list[RoiConfig]:
        names = [r.name for r in value]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError(f"ROI names must be unique; repeated: {', '.join(dups)}")
        return value
