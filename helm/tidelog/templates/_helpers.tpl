{{/* Chart name, truncated to a DNS label. */}}
{{- define "tidelog.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name: the StatefulSet, client Service and ConfigMap. */}}
{{- define "tidelog.fullname" -}}
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

{{/* The headless Service giving each broker a stable DNS name. */}}
{{- define "tidelog.headless" -}}
{{- printf "%s-headless" (include "tidelog.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tidelog.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidelog.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tidelog.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tidelog.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* <headless>.<namespace>.svc.<domain>: the suffix of every broker's DNS name. */}}
{{- define "tidelog.dnsSuffix" -}}
{{- printf "%s.%s.svc.%s" (include "tidelog.headless" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* The broker YAML (config file shape): generated keys, then .Values.config merged over. */}}
{{- define "tidelog.brokerConfig" -}}
{{- $fullname := include "tidelog.fullname" . }}
{{- $suffix := include "tidelog.dnsSuffix" . }}
{{- $replicas := int .Values.replicaCount }}
{{- $seeds := list }}
{{- range $ordinal := until $replicas }}
{{- $seeds = append $seeds (printf "%s-%d.%s:%d" $fullname $ordinal $suffix (int $.Values.ports.cluster)) }}
{{- end }}
{{- $expect := int .Values.cluster.bootstrapExpect }}
{{- if le $expect 0 }}{{ $expect = min 3 $replicas }}{{ end }}
{{- $kafka := dict "bind" (printf "0.0.0.0:%d" (int .Values.ports.kafka)) }}
{{- if and .Values.tls.enabled .Values.auth.enabled }}
{{- $_ := set $kafka "security_protocol" "SASL_SSL" }}
{{- else if .Values.tls.enabled }}
{{- $_ := set $kafka "security_protocol" "SSL" }}
{{- else if .Values.auth.enabled }}
{{- $_ := set $kafka "security_protocol" "SASL_PLAINTEXT" }}
{{- end }}
{{- $config := dict
  "data_dir" "/var/lib/tidelog"
  "listeners" (dict "kafka" $kafka)
  "cluster" (dict
    "listen" (printf "0.0.0.0:%d" (int .Values.ports.cluster))
    "seeds" $seeds
    "bootstrap_expect" $expect
    "name" (default $fullname .Values.cluster.name))
  "admin" (dict "listen" (printf "0.0.0.0:%d" (int .Values.ports.admin)))
  "telemetry" (dict "level" .Values.logLevel "format" .Values.logFormat) }}
{{- if .Values.tls.enabled }}
{{- $files := dict
  "cert_file" (printf "/etc/tidelog/tls/%s" .Values.tls.certKey)
  "key_file" (printf "/etc/tidelog/tls/%s" .Values.tls.keyKey)
  "ca_file" (printf "/etc/tidelog/tls/%s" .Values.tls.caKey) }}
{{- $_ := set $config "tls" (merge (dict "client_auth" .Values.tls.clientAuth) $files) }}
{{- if .Values.tls.cluster }}
{{- $_ := set (get $config "cluster") "tls" (deepCopy $files) }}
{{- end }}
{{- end }}
{{- if .Values.auth.enabled }}
{{- $user := dict "name" .Values.auth.bootstrapUser "password_file" (printf "/etc/tidelog/auth/%s" .Values.auth.passwordKey) }}
{{- $super := prepend (.Values.auth.superUsers | default list) (printf "User:%s" .Values.auth.bootstrapUser) | uniq }}
{{- $_ := set $config "authorization" (dict "enabled" .Values.auth.acls "bootstrap_users" (list $user) "super_users" $super) }}
{{- end }}
{{- toYaml (mustMergeOverwrite $config (deepCopy .Values.config)) }}
{{- end }}
