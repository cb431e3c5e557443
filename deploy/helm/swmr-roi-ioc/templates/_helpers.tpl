{{/*
Names and labels.
*/}}
{{- define "swmr-roi-ioc.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "swmr-roi-ioc.selectorLabels" -}}
app: {{ include "swmr-roi-ioc.name" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "swmr-roi-ioc.labels" -}}
{{ include "swmr-roi-ioc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
ioc: "true"
{{- end -}}

{{/*
The instance config: config/ioc.yaml shipped in the chart.
*/}}
{{- define "swmr-roi-ioc.configText" -}}
{{- $text := .Files.Get "config/ioc.yaml" -}}
{{- if not $text -}}
{{- fail "config/ioc.yaml is missing from the chart: copy your instance's ioc.yaml there" -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/* config/ioc.yaml parsed, as JSON (templates return strings) */}}
{{- define "swmr-roi-ioc.configJson" -}}
{{- $config := include "swmr-roi-ioc.configText" . | fromYaml -}}
{{- if hasKey $config "Error" -}}
{{- fail (printf "config/ioc.yaml is not valid YAML: %s" $config.Error) -}}
{{- end -}}
{{- $config | toJson -}}
{{- end -}}

{{/* The PV prefix: values.prefix, else the config's prefix. */}}
{{- define "swmr-roi-ioc.prefix" -}}
{{- $config := include "swmr-roi-ioc.configJson" . | fromJson -}}
{{- .Values.prefix | default $config.prefix | required "no PV prefix: set `prefix` in config/ioc.yaml or in values" -}}
{{- end -}}

{{/* Where the data is mounted: values.dataRoot, else the config's data_root. */}}
{{- define "swmr-roi-ioc.dataRoot" -}}
{{- $config := include "swmr-roi-ioc.configJson" . | fromJson -}}
{{- $root := .Values.dataRoot | default $config.data_root | required "no data root: set `data_root` in config/ioc.yaml or `dataRoot` in values" -}}
{{- if not (hasPrefix "/" $root) -}}
{{- fail (printf "the data root must be an absolute path, got %q" $root) -}}
{{- end -}}
{{- $root -}}
{{- end -}}

{{/* Where NeXus files go: nexus.directory of the config (needed with nexusVolume). */}}
{{- define "swmr-roi-ioc.nexusDirectory" -}}
{{- $config := include "swmr-roi-ioc.configJson" . | fromJson -}}
{{- $nexus := $config.nexus | default dict -}}
{{- $dir := $nexus.directory | default "" -}}
{{- if not (hasPrefix "/" $dir) -}}
{{- fail (printf "nexusVolume.enabled needs an absolute `nexus.directory` in config/ioc.yaml, got %q" $dir) -}}
{{- end -}}
{{- $dir -}}
{{- end -}}

{{/*
The liveness check, as Python source: read <prefix>Uptime_RBV over CA from
the IOC in this network namespace with libca (aioca, a runtime dependency;
LOGNAME because the client sends a user name and an arbitrary uid has none).
*/}}
{{- define "swmr-roi-ioc.livenessCode" -}}
{{- $pv := printf "%sUptime_RBV" (include "swmr-roi-ioc.prefix" .) -}}
import os; os.environ.update(EPICS_CA_AUTO_ADDR_LIST="NO", EPICS_CA_ADDR_LIST={{ .Values.livenessProbe.addrList | toJson }}); os.environ.setdefault("LOGNAME", "liveness"); import asyncio; from aioca import caget; asyncio.run(caget({{ $pv | toJson }}, timeout=2))
{{- end -}}
