{{/*
Names, labels and small derived values shared by every template.
*/}}

{{/* Ports the operator listens on. `modelfleet run` is given these as flags; keep in sync
with the operator's defaults and the Dockerfile's EXPOSE. */}}
{{- define "modelfleet.livenessPort" -}}8081{{- end }}
{{- define "modelfleet.metricsPort" -}}9100{{- end }}

{{/* Where cloudCredentials.existingSecret is mounted. */}}
{{- define "modelfleet.credentialsDir" -}}/var/run/modelfleet/credentials{{- end }}

{{/* Chart name, overridable. */}}
{{- define "modelfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters (DNS label limit). When the release
name already contains the chart name it is used as is.
*/}}
{{- define "modelfleet.fullname" -}}
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

{{/* Name with a suffix, kept within 63 characters. */}}
{{- define "modelfleet.suffixedName" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "modelfleet.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{/* Chart label value: name-version, "+" is not allowed in label values. */}}
{{- define "modelfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades (Deployment selectors are immutable). */}}
{{- define "modelfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels. Call with (list $ "component").
*/}}
{{- define "modelfleet.labels" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 -}}
helm.sh/chart: {{ include "modelfleet.chart" $root }}
{{ include "modelfleet.selectorLabels" $root }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/component: {{ $component }}
app.kubernetes.io/part-of: modelfleet
{{- end }}

{{/* ServiceAccount the operator runs as. */}}
{{- define "modelfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Operator image reference: repository:tag, or repository@digest when pinned. */}}
{{- define "modelfleet.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Namespaces whose Secrets the operator may read (deduplicated; default: release's). */}}
{{- define "modelfleet.kubeconfigSecretNamespaces" -}}
{{- $namespaces := .Values.kubeconfigSecretNamespaces | default (list .Release.Namespace) }}
{{- toJson (uniq $namespaces) }}
{{- end }}

{{/* ServiceAccount annotations: user-provided plus one per configured cloud identity. */}}
{{- define "modelfleet.serviceAccountAnnotations" -}}
{{- $annotations := deepCopy (.Values.serviceAccount.annotations | default dict) }}
{{- with .Values.cloudCredentials }}
{{- if .aws.roleArn }}
{{- $_ := set $annotations "eks.amazonaws.com/role-arn" .aws.roleArn }}
{{- end }}
{{- if .gcp.serviceAccount }}
{{- $_ := set $annotations "iam.gke.io/gcp-service-account" .gcp.serviceAccount }}
{{- end }}
{{- if .azure.clientId }}
{{- $_ := set $annotations "azure.workload.identity/client-id" .azure.clientId }}
{{- end }}
{{- if .azure.tenantId }}
{{- $_ := set $annotations "azure.workload.identity/tenant-id" .azure.tenantId }}
{{- end }}
{{- end }}
{{- if $annotations }}
{{- toYaml $annotations }}
{{- end }}
{{- end }}
