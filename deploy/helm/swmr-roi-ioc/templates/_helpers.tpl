{{/*
Names and labels (epics-containers' ioc-instance conventions: ec tooling
selects IOCs by is_ioc, location, domain and ioc_group).
*/}}
{{- define "swmr-roi-ioc.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* location: the instance's, else global's, else the release name up to its first "-" */}}
{{- define "swmr-roi-ioc.location" -}}
{{- .Values.location | default .Values.global.location | default (splitList "-" .Release.Name | first) -}}
{{- end -}}

{{- define "swmr-roi-ioc.domain" -}}
{{- .Values.domain | default .Values.global.domain | default (include "swmr-roi-ioc.location" .) -}}
{{- end -}}

{{- define "swmr-roi-ioc.iocGroup" -}}
{{- .Values.ioc_group | default .Values.global.ioc_group | default (include "swmr-roi-ioc.domain" .) -}}
{{- end -}}

{{- define "swmr-roi-ioc.selectorLabels" -}}
app: {{ include "swmr-roi-ioc.name" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "swmr-roi-ioc.labels" -}}
{{ include "swmr-roi-ioc.selectorLabels" . }}
is_ioc: "true"
location: {{ include "swmr-roi-ioc.location" . | quote }}
domain: {{ include "swmr-roi-ioc.domain" . | quote }}
ioc_group: {{ include "swmr-roi-ioc.iocGroup" . | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
The instance's config folder, as ConfigMap data (file name -> text): the
files a services repository hands over in global.files (ec's way:
`--set-file global.files.ioc\.yaml=config/ioc.yaml`, which reaches this
chart as a dependency too), else this chart's own config/ folder (the
shipped example).
*/}}
{{- define "swmr-roi-ioc.configFiles" -}}
{{- if .Values.global.files -}}
{{- toYaml .Values.global.files -}}
{{- else -}}
{{- (.Files.Glob "config/*").AsConfig -}}
{{- end -}}
{{- end -}}

{{- define "swmr-roi-ioc.configText" -}}
{{- $files := include "swmr-roi-ioc.configFiles" . | fromYaml -}}
{{- $text := get $files "ioc.yaml" -}}
{{- if not $text -}}
{{- fail "no ioc.yaml: give the instance's config (global.files.ioc\\.yaml, e.g. --set-file global.files.ioc\\.yaml=config/ioc.yaml)" -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{/* ioc.yaml parsed, as JSON (templates return strings) */}}
{{- define "swmr-roi-ioc.configJson" -}}
{{- $config := include "swmr-roi-ioc.configText" . | fromYaml -}}
{{- if hasKey $config "Error" -}}
{{- fail (printf "ioc.yaml is not valid YAML: %s" $config.Error) -}}
{{- end -}}
{{- $config | toJson -}}
{{- end -}}

{{/* The PV prefix: values.prefix, else the config's prefix. */}}
{{- define "swmr-roi-ioc.prefix" -}}
{{- $config := include "swmr-roi-ioc.configJson" . | fromJson -}}
{{- .Values.prefix | default $config.prefix | required "no PV prefix: set `prefix` in ioc.yaml or in values" -}}
{{- end -}}

{{/* Where the data is mounted: values.dataRoot, else the config's data_root. */}}
{{- define "swmr-roi-ioc.dataRoot" -}}
{{- $config := include "swmr-roi-ioc.configJson" . | fromJson -}}
{{- $root := .Values.dataRoot | default $config.data_root | required "no data root: set `data_root` in ioc.yaml or `dataRoot` in values" -}}
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
{{- fail (printf "nexusVolume.enabled needs an absolute `nexus.directory` in ioc.yaml, got %q" $dir) -}}
{{- end -}}
{{- $dir -}}
{{- end -}}
