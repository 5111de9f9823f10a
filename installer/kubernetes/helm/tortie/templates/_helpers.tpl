{{/* The one image holding tortie-node, tortie-controllers and the CNI plugin. */}}
{{- define "tortie.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "tortie.labels" -}}
app.kubernetes.io/part-of: tortie
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The datastore variables every component reads. */}}
{{- define "tortie.datastoreEnv" -}}
- name: DATASTORE_TYPE
  value: {{ .Values.datastore.type | quote }}
{{- if eq .Values.datastore.type "etcdv3" }}
- name: ETCD_ENDPOINTS
  value: {{ required "datastore.etcd.endpoints is required with datastore.type etcdv3" .Values.datastore.etcd.endpoints | quote }}
{{- if .Values.datastore.etcd.tlsSecret }}
- name: ETCD_CA_CERT_FILE
  value: /calico-secrets/etcd-ca
- name: ETCD_CERT_FILE
  value: /calico-secrets/etcd-cert
- name: ETCD_KEY_FILE
  value: /calico-secrets/etcd-key
{{- end }}
{{- end }}
{{- end -}}

{{/* install-cni's variables (init container and the watching container). */}}
{{- define "tortie.cniEnv" -}}
- name: CNI_CONF_NAME
  value: {{ .Values.cni.confName | quote }}
- name: CNI_NET_DIR
  value: {{ .Values.cni.netDir | quote }}
- name: CNI_NETWORK_CONFIG
  valueFrom:
    configMapKeyRef:
      name: tortie-config
      key: cni_network_config
- name: CNI_MTU
  valueFrom:
    configMapKeyRef:
      name: tortie-config
      key: veth_mtu
- name: CNI_LOG_LEVEL
  value: {{ .Values.cni.logLevel | quote }}
- name: KUBERNETES_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: CALICO_CNI_SERVICE_ACCOUNT
  value: tortie-cni-plugin
- name: TORTIE_CNI_CALICO_NAMES
  value: {{ .Values.cni.calicoNames | quote }}
{{ include "tortie.datastoreEnv" . }}
{{- end -}}
