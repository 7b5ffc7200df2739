{{/* Chart name, at most 63 characters. */}}
{{- define "scopesvc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, plus the chart name unless it already holds it. */}}
{{- define "scopesvc.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "scopesvc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scopesvc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "scopesvc.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "scopesvc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "scopesvc.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "scopesvc.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ConfigMap holding the catalog, or nothing for the embedded catalog. */}}
{{- define "scopesvc.catalogConfigMap" -}}
{{- if .Values.catalog.existingConfigMap }}
{{- .Values.catalog.existingConfigMap }}
{{- else if .Values.catalog.inline }}
{{- printf "%s-catalog" (include "scopesvc.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Unix socket: for a sidecar's gateway (transport uds) and for health probes under TLS. */}}
{{- define "scopesvc.socketDir" -}}/var/run/scopesvc{{- end }}
{{- define "scopesvc.socket" -}}{{ include "scopesvc.socketDir" . }}/scopesvc.sock{{- end }}
{{- define "scopesvc.usesSocket" -}}
{{- if or .Values.tls.enabled (and .Values.sidecar.enabled (eq .Values.sidecar.transport "uds")) }}true{{ end }}
{{- end }}

{{/* `scopesvc serve` arguments; flag names as in `scopesvc serve --help`. */}}
{{- define "scopesvc.args" -}}
- serve
- --host=0.0.0.0
- --port={{ .Values.ports.grpc }}
- --metrics-host=0.0.0.0
- --metrics-port={{ .Values.ports.metrics }}
- --log-level={{ .Values.server.logLevel }}
- --log-format={{ .Values.server.logFormat }}
- --grace={{ .Values.server.grace }}
{{- if include "scopesvc.catalogConfigMap" . }}
- --catalog=/etc/scopesvc/catalog/{{ .Values.catalog.key }}
{{- end }}
{{- if include "scopesvc.usesSocket" . }}
- --uds={{ include "scopesvc.socket" . }}
{{- end }}
{{- if .Values.tls.enabled }}
- --tls-cert=/etc/scopesvc/tls/tls.crt
- --tls-key=/etc/scopesvc/tls/tls.key
{{- if .Values.tls.clientAuth }}
- --tls-client-ca=/etc/scopesvc/tls/ca.crt
{{- end }}
{{- end }}
{{- if .Values.server.forwardAuthPort }}
- --forward-auth-host=0.0.0.0
- --forward-auth-port={{ .Values.server.forwardAuthPort }}
{{- end }}
{{- with .Values.extraArgs }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
How a probe asks the standard gRPC health service. Kubernetes' own gRPC probe speaks plaintext
only, so under TLS the probe runs the image's Python against the plaintext Unix socket instead.
*/}}
{{- define "scopesvc.probeAction" -}}
{{- if .Values.tls.enabled }}
exec:
  command:
    - python
    - -c
    - >-
      import sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g;
      sys.exit(g.HealthStub(grpc.insecure_channel("unix:{{ include "scopesvc.socket" . }}")).Check(h.HealthCheckRequest(), timeout=2).status != h.HealthCheckResponse.SERVING)
{{- else }}
grpc:
  port: {{ .Values.ports.grpc }}
{{- end }}
{{- end }}
